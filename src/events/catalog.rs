//! The event catalog: the static definitions of every event (name, subsystem, `format` text,
//! which files its directory offers) plus `header_page`/`header_event`.
//!
//! A catalog comes from one of three places: the embedded default (captured from the Linux 6.18
//! kernel of the project's machines, `catalog/linux-6.18.catalog`), a catalog file in the format
//! below, or a directory laid out like tracefs (e.g. a mounted kernel tracefs).
//!
//! The file format is line based so errors can name a line:
//! ```text
//! utracefs-catalog 1
//! header_page <n>            followed by n lines
//! header_event <n>           followed by n lines
//! printk_formats <n>         followed by n lines (optional)
//! features <list|-> 0        what the kernel offers beyond the base set (optional)
//! event <system> <name> <seq|-> <files> <n>   followed by n lines of `format` text
//! ```
//! Records appear in directory order (subsystems in `events/` order, events in their
//! subsystem's order). `seq` is the event's position in `available_events` (`-` for events that
//! are not listed there, such as `ftrace/*`); `files` is the comma list of the files the event
//! directory offers, in readdir order. `features` is a comma list of [`Features`] names; a
//! catalog without it describes a kernel with none of them.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

/// The files an event directory may offer, in the kernel's readdir order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventFile {
    Enable,
    Filter,
    Trigger,
    Format,
    Id,
    /// CONFIG_HIST_TRIGGERS's `hist`: the event's histograms (every event directory has it).
    Hist,
    /// CONFIG_TRACE_EVENT_INJECT's `inject`: writing `field=value …` emits a record.
    Inject,
}

impl EventFile {
    pub const ALL: [EventFile; 7] = [
        EventFile::Enable,
        EventFile::Filter,
        EventFile::Trigger,
        EventFile::Format,
        EventFile::Id,
        EventFile::Hist,
        EventFile::Inject,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventFile::Enable => "enable",
            EventFile::Filter => "filter",
            EventFile::Trigger => "trigger",
            EventFile::Format => "format",
            EventFile::Id => "id",
            EventFile::Hist => "hist",
            EventFile::Inject => "inject",
        }
    }

    pub fn from_name(name: &str) -> Option<EventFile> {
        EventFile::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Mode bits as the kernel gives them (§2.2).
    pub fn mode(self) -> u16 {
        match self {
            EventFile::Format | EventFile::Id | EventFile::Hist => 0o440,
            EventFile::Inject => 0o200,
            _ => 0o640,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`EventFile`]s, one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FileSet(u8);

impl FileSet {
    pub const STANDARD: FileSet = FileSet(0b11111);

    pub fn contains(self, f: EventFile) -> bool {
        self.0 & f.bit() != 0
    }

    pub fn insert(&mut self, f: EventFile) {
        self.0 |= f.bit();
    }

    /// The files in readdir order.
    pub fn iter(self) -> impl Iterator<Item = EventFile> {
        EventFile::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }

    /// Events without `enable` are "ignore-enable" (the ftrace internal formats): they are not
    /// listed in `available_events` and never match `set_event`.
    pub fn ignore_enable(self) -> bool {
        !self.contains(EventFile::Enable)
    }
}

/// Static text: borrowed from the binary for the embedded catalog, owned otherwise.
pub type Text = Cow<'static, str>;

/// One event's static definition.
#[derive(Debug, Clone)]
pub struct EventDef {
    pub system: String,
    pub name: String,
    /// Position in `available_events` (lower = listed first); `None` when not listed.
    pub seq: Option<u32>,
    pub files: FileSet,
    /// The type id from the `ID:` line of `format`.
    pub id: Option<u32>,
    pub format: Text,
}

/// What a kernel may offer beyond the base tracefs file set, each behind a kernel config
/// option. A mirror offers exactly what its kernel had; the embedded catalog offers them all.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// CONFIG_SYNTH_EVENTS: `synthetic_events` and `s:` in `dynamic_events`.
    pub synthetic_events: bool,
    /// CONFIG_USER_EVENTS: `u:` in `dynamic_events`.
    pub user_events: bool,
    /// CONFIG_TRACE_EVENT_INJECT: an `inject` file in every event that can be enabled.
    pub inject: bool,
    /// CONFIG_HIST_TRIGGERS: `hist` triggers and a `hist` file in every event directory.
    pub hist: bool,
    /// CONFIG_TRACER_SNAPSHOT: the `snapshot` buffer (its files, the `snapshot` trigger).
    pub snapshot: bool,
}

impl Features {
    pub const ALL: Features = Features {
        synthetic_events: true,
        user_events: true,
        inject: true,
        hist: true,
        snapshot: true,
    };

    /// An event directory's files on this kernel: `inject` joins every event that can be
    /// enabled when the kernel has it.
    pub fn event_files(self, mut files: FileSet) -> FileSet {
        if self.inject && files.contains(EventFile::Enable) {
            files.insert(EventFile::Inject);
        }
        if self.hist {
            files.insert(EventFile::Hist);
        }
        files
    }

    fn names(self) -> Vec<&'static str> {
        [
            (self.synthetic_events, "synthetic_events"),
            (self.user_events, "user_events"),
            (self.inject, "inject"),
            (self.hist, "hist"),
            (self.snapshot, "snapshot"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    fn parse(list: &str) -> Result<Features, String> {
        let mut f = Features::default();
        if list == "-" {
            return Ok(f);
        }
        for name in list.split(',') {
            match name {
                "synthetic_events" => f.synthetic_events = true,
                "user_events" => f.user_events = true,
                "inject" => f.inject = true,
                "hist" => f.hist = true,
                "snapshot" => f.snapshot = true,
                _ => return Err(format!("unknown feature `{name}`")),
            }
        }
        Ok(f)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Catalog {
    pub header_page: Text,
    pub header_event: Text,
    /// The kernel's `printk_formats` (the `trace_printk` format strings by address).
    pub printk_formats: Text,
    pub features: Features,
    /// In directory order.
    pub events: Vec<EventDef>,
}

/// A catalog problem, located at `path:line` when it comes from a file.
#[derive(Debug)]
pub struct CatalogError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "catalog {}: line {l}: {}", self.path, self.message),
            None => write!(f, "catalog {}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for CatalogError {}

const MAGIC: &str = "utracefs-catalog 1";

static EMBEDDED: &str = include_str!("../../catalog/linux-6.18.catalog");

impl Catalog {
    /// The default catalog compiled into the binary. It offers every [`Features`] utracefs
    /// has, whatever the kernel it was captured from had.
    pub fn embedded() -> Catalog {
        // The format texts stay in the binary's read-only data: nothing is copied.
        let mut cat = Catalog::parse_with(EMBEDDED, "<embedded>", Cow::Borrowed)
            .expect("the embedded catalog is well-formed");
        cat.features = Features::ALL;
        cat
    }

    /// Loads a catalog file or a tracefs-like directory.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let shown = path.display().to_string();
        let err = |message: String| CatalogError {
            path: shown.clone(),
            line: None,
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
        if meta.is_dir() {
            return Catalog::from_tracefs_dir(path);
        }
        let text = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let text = String::from_utf8(text).map_err(|_| err("not UTF-8 text".into()))?;
        Catalog::parse(&text, &shown)
    }

    /// Parses the catalog file format (see the module docs).
    pub fn parse(text: &str, path: &str) -> Result<Catalog, CatalogError> {
        Catalog::parse_with(text, path, |s| Cow::Owned(s.to_owned()))
    }

    /// Parses, turning each record's text (a slice of `text`) into a [`Text`] with `keep`.
    fn parse_with<'a>(
        text: &'a str,
        path: &str,
        keep: impl Fn(&'a str) -> Text,
    ) -> Result<Catalog, CatalogError> {
        let mut offset = 0;
        let mut lines = text
            .split_inclusive('\n')
            .map(|l| {
                offset += l.len();
                (offset - l.len(), l)
            })
            .enumerate()
            .map(|(i, (start, l))| (i, start, l));
        let err = |line: usize, message: String| CatalogError {
            path: path.to_string(),
            line: Some(line + 1),
            message,
        };
        match lines.next() {
            Some((_, _, l)) if l.trim_end_matches('\n') == MAGIC => {}
            Some((i, _, _)) => return Err(err(i, format!("expected `{MAGIC}`"))),
            None => return Err(err(0, "empty file".into())),
        }
        let mut cat = Catalog::default();
        let mut seen = std::collections::HashSet::new();
        let mut ids = std::collections::HashMap::new();
        while let Some((i, start, line)) = lines.next() {
            let body_start = start + line.len();
            let header = line.trim_end_matches('\n');
            let words: Vec<&str> = header.split(' ').collect();
            let count = words
                .last()
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| err(i, format!("expected a line count at the end of `{header}`")))?;
            let mut body_end = body_start;
            for k in 0..count {
                match lines.next() {
                    Some((_, s, l)) => body_end = s + l.len(),
                    None => {
                        return Err(err(
                            i,
                            format!("record promises {count} lines but the file ends after {k}"),
                        ));
                    }
                }
            }
            let body = keep(&text[body_start..body_end]);
            match words.as_slice() {
                ["header_page", _] => cat.header_page = body,
                ["header_event", _] => cat.header_event = body,
                ["printk_formats", _] => cat.printk_formats = body,
                ["features", list, "0"] => {
                    cat.features = Features::parse(list).map_err(|m| err(i, m))?
                }
                ["event", system, name, seq, files, _] => {
                    let ev =
                        EventDef::new(system, name, seq, files, body).map_err(|m| err(i, m))?;
                    if !seen.insert((ev.system.clone(), ev.name.clone())) {
                        return Err(err(i, format!("duplicate event {system}/{name}")));
                    }
                    if let Some(id) = ev.id
                        && let Some(first) = ids.insert(id, format!("{system}/{name}"))
                    {
                        return Err(err(
                            i,
                            format!("{system}/{name} has ID {id}, as {first} has"),
                        ));
                    }
                    cat.events.push(ev);
                }
                _ => return Err(err(i, format!("unknown record `{header}`"))),
            }
        }
        if cat.header_page.is_empty() || cat.header_event.is_empty() {
            return Err(CatalogError {
                path: path.to_string(),
                line: None,
                message: "missing header_page or header_event section".into(),
            });
        }
        Ok(cat)
    }

    /// Serializes to the catalog file format.
    pub fn to_text(&self) -> String {
        let mut out = format!("{MAGIC}\n");
        let mut section = |head: String, body: &str| {
            let n = body.split_inclusive('\n').count();
            let _ = writeln!(out, "{head} {n}");
            out.push_str(body);
            if !body.is_empty() && !body.ends_with('\n') {
                out.push('\n');
            }
        };
        section("header_page".into(), &self.header_page);
        section("header_event".into(), &self.header_event);
        section("printk_formats".into(), &self.printk_formats);
        let features = self.features.names();
        let features = if features.is_empty() {
            "-".to_string()
        } else {
            features.join(",")
        };
        section(format!("features {features}"), "");
        for ev in &self.events {
            let seq = ev.seq.map_or("-".to_string(), |s| s.to_string());
            let files: Vec<&str> = ev.files.iter().map(EventFile::name).collect();
            section(
                format!("event {} {} {seq} {}", ev.system, ev.name, files.join(",")),
                &ev.format,
            );
        }
        out
    }

    /// Reads a tracefs-like directory: `events/` listings (in their order), every event's
    /// `format`, `available_events` for the listing order, and the two headers.
    pub fn from_tracefs_dir(root: &Path) -> Result<Catalog, CatalogError> {
        let err = |p: &Path, e: std::io::Error| CatalogError {
            path: p.display().to_string(),
            line: None,
            message: format!("cannot read: {e}"),
        };
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| err(p, e));
        let events_dir = root.join("events");
        let mut seqs = std::collections::HashMap::new();
        if let Ok(av) = std::fs::read_to_string(root.join("available_events")) {
            for (i, line) in av.lines().enumerate() {
                seqs.insert(line.to_string(), i as u32);
            }
        }
        // The headers answer EOF to any read past offset 0 (§3.3), so read each in one call.
        let read_once = |p: &Path| -> Result<String, CatalogError> {
            use std::io::Read;
            let mut buf = vec![0; 1 << 16];
            let n = std::fs::File::open(p)
                .and_then(|mut f| f.read(&mut buf))
                .map_err(|e| err(p, e))?;
            buf.truncate(n);
            String::from_utf8(buf).map_err(|_| err(p, std::io::ErrorKind::InvalidData.into()))
        };
        let exists = |name: &str| root.join(name).exists();
        let mut cat = Catalog {
            header_page: read_once(&events_dir.join("header_page"))?.into(),
            header_event: read_once(&events_dir.join("header_event"))?.into(),
            // Without CONFIG_TRACING's trace_printk support there is none.
            printk_formats: match exists("printk_formats") {
                true => read(&root.join("printk_formats"))?.into(),
                false => Text::default(),
            },
            features: Features {
                synthetic_events: exists("synthetic_events"),
                user_events: exists("user_events_data"),
                inject: false,
                hist: false,
                snapshot: exists("snapshot"),
            },
            events: Vec::new(),
        };
        for sys in list_dirs(&events_dir).map_err(|e| err(&events_dir, e))? {
            let sys_dir = events_dir.join(&sys);
            for ev in list_dirs(&sys_dir).map_err(|e| err(&sys_dir, e))? {
                let ev_dir = sys_dir.join(&ev);
                let mut files = FileSet::default();
                for entry in std::fs::read_dir(&ev_dir).map_err(|e| err(&ev_dir, e))? {
                    let entry = entry.map_err(|e| err(&ev_dir, e))?;
                    if let Some(f) = entry.file_name().to_str().and_then(EventFile::from_name) {
                        files.insert(f);
                        cat.features.inject |= f == EventFile::Inject;
                        cat.features.hist |= f == EventFile::Hist;
                    }
                }
                let format_path = ev_dir.join("format");
                let format = read(&format_path)?;
                let seq = seqs.get(&format!("{sys}:{ev}")).copied();
                let id = parse_format_id(&format).map_err(|message| CatalogError {
                    path: format_path.display().to_string(),
                    line: None,
                    message,
                })?;
                cat.events.push(EventDef {
                    system: sys.clone(),
                    name: ev,
                    seq,
                    files,
                    id,
                    format: format.into(),
                });
            }
        }
        Ok(cat)
    }
}

impl EventDef {
    fn new(
        system: &str,
        name: &str,
        seq: &str,
        files: &str,
        format: Text,
    ) -> Result<EventDef, String> {
        let valid = |s: &str| {
            !s.is_empty() && s.len() <= 255 && !s.contains(['/', '\0']) && s != "." && s != ".."
        };
        if !valid(system) || !valid(name) {
            return Err(format!("invalid system or event name `{system}/{name}`"));
        }
        let seq = match seq {
            "-" => None,
            s => Some(
                s.parse()
                    .map_err(|_| format!("invalid sequence number `{s}`"))?,
            ),
        };
        let mut set = FileSet::default();
        for f in files.split(',') {
            set.insert(EventFile::from_name(f).ok_or_else(|| format!("unknown event file `{f}`"))?);
        }
        if !set.contains(EventFile::Format) {
            return Err("an event directory always offers `format`".into());
        }
        let id = parse_format_id(&format)?;
        if set.contains(EventFile::Id) && id.is_none() {
            return Err(format!(
                "{system}/{name} offers `id` but its format has no `ID:` line"
            ));
        }
        Ok(EventDef {
            system: system.into(),
            name: name.into(),
            seq,
            files: set,
            id,
            format,
        })
    }
}

/// The number on the `ID:` line of a `format` text: `None` without such a line, an error when
/// it holds no number.
pub fn parse_format_id(format: &str) -> Result<Option<u32>, String> {
    let Some(value) = format.lines().find_map(|l| l.strip_prefix("ID: ")) else {
        return Ok(None);
    };
    let value = value.trim();
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("ID: {value} is not a number"))
}

/// Subdirectory names of `dir` in readdir order.
fn list_dirs(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir()
            && let Ok(name) = entry.file_name().into_string()
        {
            out.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_is_complete() {
        let cat = Catalog::embedded();
        assert!(cat.events.len() > 2000, "{} events", cat.events.len());
        let sw = cat
            .events
            .iter()
            .find(|e| e.name == "sched_switch")
            .unwrap();
        assert_eq!(sw.system, "sched");
        assert_eq!(sw.files, FileSet::STANDARD);
        assert!(sw.format.starts_with("name: sched_switch\nID: "));
        let print = cat
            .events
            .iter()
            .find(|e| e.system == "ftrace" && e.name == "print")
            .unwrap();
        let files: Vec<_> = print.files.iter().map(EventFile::name).collect();
        assert_eq!(files, ["trigger", "format", "id"]);
        assert_eq!(print.id, Some(5));
        assert!(cat.header_page.starts_with("\tfield: u64 timestamp;"));
    }

    #[test]
    fn text_round_trip() {
        let cat = Catalog::embedded();
        let again = Catalog::parse(&cat.to_text(), "x").unwrap();
        assert_eq!(again.events.len(), cat.events.len());
        assert_eq!(again.to_text(), cat.to_text());
    }

    #[test]
    fn errors_name_the_line() {
        let bad = "utracefs-catalog 1\nheader_page 1\nx\nheader_event 1\ny\nevent a b - enable 3\nname: b\n";
        let e = Catalog::parse(bad, "f.cat").unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.to_string().contains("f.cat: line 6"), "{e}");
        let e = Catalog::parse("nope\n", "f").unwrap_err();
        assert_eq!(e.line, Some(1));
        let bad = "utracefs-catalog 1\nheader_page 1\nx\nheader_event 1\ny\nevent a b - bogus 0\n";
        assert!(
            Catalog::parse(bad, "f")
                .unwrap_err()
                .message
                .contains("bogus")
        );
        let bad = "utracefs-catalog 1\nheader_page x\n";
        assert_eq!(Catalog::parse(bad, "f").unwrap_err().line, Some(2));
    }

    /// A catalog with the given event records after valid headers.
    fn with_events(records: &[(&str, &str, &str)]) -> String {
        let mut text = "utracefs-catalog 1\nheader_page 1\nx\nheader_event 1\ny\n".to_string();
        for (sys, name, format) in records {
            let n = format.lines().count();
            text += &format!("event {sys} {name} - enable,format,id {n}\n{format}");
        }
        text
    }

    #[test]
    fn features_and_printk_formats_round_trip() {
        let cat = Catalog::embedded();
        assert_eq!(
            cat.features,
            Features::ALL,
            "the embedded catalog offers every feature"
        );
        assert!(cat.printk_formats.lines().count() > 10);
        assert!(
            cat.printk_formats
                .lines()
                .all(|l| l.starts_with("0x") && l.contains(" : ")),
            "{}",
            cat.printk_formats
        );
        for features in [
            Features::default(),
            Features::ALL,
            Features {
                inject: true,
                ..Default::default()
            },
        ] {
            let text = Catalog {
                features,
                ..cat.clone()
            }
            .to_text();
            assert_eq!(Catalog::parse(&text, "x").unwrap().features, features);
        }
        let text = with_events(&[]) + "features inject,bogus 0\n";
        let e = Catalog::parse(&text, "f").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (Some(6), "unknown feature `bogus`")
        );
        // A catalog without the record describes a kernel with none of them.
        assert_eq!(
            Catalog::parse(&with_events(&[]), "f").unwrap().features,
            Features::default()
        );
    }

    #[test]
    fn dot_names_are_rejected() {
        for (sys, name) in [(".", "a"), ("..", "a"), ("s", "."), ("s", "..")] {
            let text = with_events(&[(sys, name, "name: a\nID: 7\n")]);
            let e = Catalog::parse(&text, "f").unwrap_err();
            assert_eq!(e.line, Some(6), "{sys}/{name}: {e}");
            assert!(e.message.contains("invalid system or event name"), "{e}");
        }
        // Dots inside a name are fine.
        assert!(Catalog::parse(&with_events(&[("s", "a.b", "ID: 7\n")]), "f").is_ok());
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let text = with_events(&[
            ("s", "a", "ID: 7\n"),
            ("s", "b", "ID: 8\n"),
            ("t", "c", "ID: 7\n"),
        ]);
        let e = Catalog::parse(&text, "f").unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.message.contains("t/c has ID 7, as s/a has"), "{e}");
    }

    #[test]
    fn a_non_numeric_id_is_named() {
        let text = with_events(&[("s", "a", "name: a\nID: banana\n")]);
        let e = Catalog::parse(&text, "f").unwrap_err();
        assert_eq!(e.line, Some(6));
        assert_eq!(e.message, "ID: banana is not a number");
        assert_eq!(parse_format_id("name: a\nformat:\n"), Ok(None));
        assert_eq!(parse_format_id("name: a\nID: 12\n"), Ok(Some(12)));
    }
}
