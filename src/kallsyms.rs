//! The host kernel's symbols (`/proc/kallsyms`), for the kernel addresses records carry
//! (`--kernel-source`): `%pS`/`%ps` text, hist `.sym`/`.sym-offset` keys and the filters'
//! `.function` ranges, with the kernel's own lookup rules (`kernel/kallsyms.c`,
//! `kernel/module/kallsyms.c`).
//!
//! Loaded once, on the first address or name that needs it (the file is megabytes). Where
//! the addresses read as zero (`kptr_restrict`, not root) the table is empty: one log line,
//! and every address stays unnamed, printed as hex as before.

use std::sync::OnceLock;

/// One symbol: its address, its name in `Symbols::names`, and its module (0 for the core
/// kernel, else 1 + an index into `Symbols::modules`).
#[derive(Clone, Copy, Debug)]
struct Sym {
    addr: u64,
    name: u32,
    len: u16,
    module: u16,
}

/// What `kallsyms_lookup()` finds for an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<'a> {
    pub name: &'a str,
    pub offset: u64,
    pub size: u64,
    /// The module, printed as ` [mod]` (none for the core kernel and BPF programs).
    pub module: Option<&'a str>,
}

/// A kallsyms table: core symbols sorted by address (aliases in the file's order, so the
/// first is the one the kernel names), then module symbols likewise.
#[derive(Debug, Default)]
pub struct Symbols {
    names: String,
    modules: Vec<String>,
    /// Core symbols, sorted by address, stable.
    core: Vec<Sym>,
    /// Address ranges the core table names (`is_ksym_addr()`).
    core_ranges: Vec<(u64, u64)>,
    /// Module (and BPF) symbols, sorted by address, stable.
    module_syms: Vec<Sym>,
    /// Every symbol (core first, then modules in file order), as indices into
    /// `core`/`module_syms` (module ones offset by `core.len()`), sorted by name then file
    /// order: `kallsyms_lookup_name()` takes the first.
    by_name: Vec<u32>,
}

/// Pseudo-modules of /proc/kallsyms whose addresses `kallsyms_lookup()` does not name.
fn skipped_module(m: &str) -> bool {
    m.starts_with("__builtin__")
}

impl Symbols {
    /// Parse /proc/kallsyms text (`addr type name [module]` lines).
    pub fn parse(text: &str) -> Symbols {
        Symbols::from_lines(text.lines())
    }

    /// Parse /proc/kallsyms lines.
    pub fn from_lines<L: AsRef<str>>(lines: impl Iterator<Item = L>) -> Symbols {
        let mut s = Symbols::default();
        let mut core = Vec::new();
        let mut mods = Vec::new();
        let mut marks: std::collections::HashMap<String, u64> = Default::default();
        for line in lines {
            let mut it = line.as_ref().split_whitespace();
            let (Some(addr), Some(_ty), Some(name)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            let module = it
                .next()
                .map(|m| m.trim_start_matches('[').trim_end_matches(']'));
            if name.len() > u16::MAX as usize || s.names.len() > u32::MAX as usize {
                continue;
            }
            let module = match module {
                None => 0,
                Some(m) if skipped_module(m) => continue,
                Some(m) => match s.modules.iter().rposition(|x| x == m) {
                    Some(i) => i as u16 + 1,
                    None if s.modules.len() < u16::MAX as usize - 1 => {
                        s.modules.push(m.to_string());
                        s.modules.len() as u16
                    }
                    None => continue,
                },
            };
            if module == 0
                && matches!(
                    name,
                    "_stext"
                        | "_etext"
                        | "_sinittext"
                        | "_einittext"
                        | "_end"
                        | "__init_begin"
                        | "__init_end"
                )
            {
                marks.entry(name.to_string()).or_insert(addr);
            }
            let sym = Sym {
                addr,
                name: s.names.len() as u32,
                len: name.len() as u16,
                module,
            };
            s.names.push_str(name);
            if module == 0 { &mut core } else { &mut mods }.push(sym);
        }
        // A daemon keeps what it once allocated: no slack.
        s.names.shrink_to_fit();
        core.shrink_to_fit();
        mods.shrink_to_fit();
        // Stable: among aliases the file's (the kernel table's) order stays.
        if core.iter().chain(&mods).all(|x| x.addr == 0) {
            return Symbols::default();
        }
        core.sort_by_key(|x| x.addr);
        mods.sort_by_key(|x| x.addr);
        let m = |n: &str| marks.get(n).copied();
        // `is_ksym_addr()`: text and init text, or (CONFIG_KALLSYMS_ALL, which lists `_end`)
        // the whole image.
        s.core_ranges = match (m("_stext"), m("_end"), m("_etext")) {
            (Some(st), Some(end), _) => {
                let mut r = vec![(st, end)];
                if let (Some(b), Some(e)) = (m("__init_begin"), m("__init_end")) {
                    r.push((b, e));
                }
                r
            }
            (Some(st), None, Some(et)) => {
                let mut r = vec![(st, et)];
                if let (Some(b), Some(e)) = (m("_sinittext"), m("_einittext")) {
                    r.push((b, e));
                }
                r
            }
            _ => match (core.first(), core.last()) {
                (Some(a), Some(b)) => vec![(a.addr, b.addr)],
                _ => Vec::new(),
            },
        };
        // Names were appended in file order (core lines first in /proc/kallsyms, then
        // modules in list order): their offset breaks ties between equal names.
        s.core = core;
        s.module_syms = mods;
        let mut by_name: Vec<u32> = (0..(s.core.len() + s.module_syms.len()) as u32).collect();
        by_name.sort_by(|&a, &b| {
            let (x, y) = (s.sym(a), s.sym(b));
            s.name_of(x).cmp(s.name_of(y)).then(x.name.cmp(&y.name))
        });
        s.by_name = by_name;
        s
    }

    fn sym(&self, i: u32) -> &Sym {
        let i = i as usize;
        match self.core.get(i) {
            Some(x) => x,
            None => &self.module_syms[i - self.core.len()],
        }
    }

    fn name_of(&self, x: &Sym) -> &str {
        &self.names[x.name as usize..x.name as usize + x.len as usize]
    }

    fn module_of(&self, x: &Sym) -> Option<&str> {
        let m = self.modules.get((x.module as usize).checked_sub(1)?)?;
        // `bpf_address_lookup()` names no module.
        (m != "bpf").then_some(m.as_str())
    }

    /// Whether the table names anything (false where addresses read as zero).
    pub fn is_empty(&self) -> bool {
        self.core.is_empty() && self.module_syms.is_empty()
    }

    /// `kallsyms_lookup()`: the symbol `addr` falls in, its offset and size.
    pub fn lookup(&self, addr: u64) -> Option<Hit<'_>> {
        if self
            .core_ranges
            .iter()
            .any(|&(a, b)| (a..b).contains(&addr))
        {
            return self.lookup_in(&self.core, addr, |_| true);
        }
        // `find_kallsyms_symbol()`: the closest preceding symbol of the module the address
        // lies in, sized up to that module's next symbol. The module's extent is not in
        // kallsyms: an address past a module's last symbol is taken as its end.
        let i = self.module_syms.partition_point(|x| x.addr <= addr);
        let module = self.module_syms.get(i.checked_sub(1)?)?.module;
        self.lookup_in(&self.module_syms, addr, |x| x.module == module)
    }

    fn lookup_in(&self, syms: &[Sym], addr: u64, same: impl Fn(&Sym) -> bool) -> Option<Hit<'_>> {
        let mut low = syms.partition_point(|x| x.addr <= addr).checked_sub(1)?;
        let start = syms[low].addr;
        // The first alias is the one named.
        while low > 0 && syms[low - 1].addr == start && same(&syms[low - 1]) {
            low -= 1;
        }
        let first = &syms[low];
        let above = &syms[low..];
        // A module's last symbol ends where the next module's first begins.
        let end = above
            .iter()
            .find(|x| x.addr > start && same(x))
            .or_else(|| above.iter().find(|x| x.addr > start))?
            .addr;
        Some(Hit {
            name: self.name_of(first),
            offset: addr - start,
            size: end - start,
            module: self.module_of(first),
        })
    }

    /// `kallsyms_lookup_name()`: the first symbol of that name, core before modules;
    /// `mod:name` looks in one module.
    pub fn lookup_name(&self, name: &str) -> Option<u64> {
        if name.is_empty() {
            return None;
        }
        let (module, name) = match name.split_once(':') {
            Some((m, n)) => (Some(m), n),
            None => (None, name),
        };
        let lo = self
            .by_name
            .partition_point(|&i| self.name_of(self.sym(i)) < name);
        self.by_name[lo..]
            .iter()
            .map(|&i| self.sym(i))
            .take_while(|x| self.name_of(x) == name)
            .find(|x| match module {
                Some(m) => {
                    x.module != 0
                        && self.modules.get(x.module as usize - 1).map(String::as_str) == Some(m)
                }
                None => true,
            })
            .map(|x| x.addr)
    }
}

impl Hit<'_> {
    /// `sprint_symbol()`: `name+0xoff/0xsize`, then ` [module]`.
    pub fn sprint(&self) -> String {
        let mut s = format!("{}+{:#x}/{:#x}", self.name, self.offset, self.size);
        if let Some(m) = self.module {
            s.push_str(" [");
            s.push_str(m);
            s.push(']');
        }
        s
    }
}

/// The machine's table, read on first use.
pub fn global() -> &'static Symbols {
    static TABLE: OnceLock<Symbols> = OnceLock::new();
    TABLE.get_or_init(|| {
        use std::io::BufRead;
        // Streamed: the file is megabytes.
        let table = match std::fs::File::open("/proc/kallsyms") {
            Ok(f) => Symbols::from_lines(std::io::BufReader::new(f).lines().map_while(Result::ok)),
            Err(_) => Symbols::default(),
        };
        if table.is_empty() {
            tracing::info!(
                "/proc/kallsyms gives no addresses (kptr_restrict, or not root): kernel \
                 addresses print as hex, and `.function` filters name no function"
            );
        }
        table
    })
}

/// `sprint_symbol()` of a kernel address on this machine, if kallsyms names it.
pub fn sprint_symbol(addr: u64) -> Option<String> {
    global().lookup(addr).map(|h| h.sprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
0000000000000000 A fixed_percpu_data
ffffffff81000000 T srso_alias_untrain_ret
ffffffff81000000 T _stext
ffffffff81000000 T _text
ffffffff81000040 t foo
ffffffff81000040 T foo_alias
ffffffff81000080 T bar
ffffffff81000100 T _etext
ffffffff81000200 T _sinittext
ffffffff81000210 T init_a
ffffffff81000300 T _einittext
ffffffff82000000 D __start_rodata
ffffffffc0001000 t m_one\t[mymod]
ffffffffc0001000 t m_one_alias\t[mymod]
ffffffffc0001030 T m_two\t[mymod]
ffffffffc0001050 T bar\t[mymod]
ffffffffc0002000 t bpf_prog_abc_x\t[bpf]
ffffffffc0002100 t m_three\t[othermod]
ffffffffc0003000 t ftrace_trampoline\t[__builtin__ftrace]
";

    #[test]
    fn lookup_follows_kallsyms() {
        let t = Symbols::parse(TEXT);
        let h = t.lookup(0xffffffff81000052).unwrap();
        assert_eq!(h.sprint(), "foo+0x12/0x40");
        // Aliases: the first in the table is named.
        assert_eq!(
            t.lookup(0xffffffff81000000).unwrap().name,
            "srso_alias_untrain_ret"
        );
        assert_eq!(
            t.lookup(0xffffffff81000080).unwrap().sprint(),
            "bar+0x0/0x80"
        );
        assert_eq!(
            t.lookup(0xffffffff81000250).unwrap().sprint(),
            "init_a+0x40/0xf0"
        );
        // Outside text and init text (no CONFIG_KALLSYMS_ALL): unnamed.
        assert_eq!(t.lookup(0xffffffff81000180), None);
        assert_eq!(t.lookup(0xffffffff82000010), None);
        assert_eq!(t.lookup(0x10), None);
        // Modules: sized to the module's next symbol, with the module's name.
        assert_eq!(
            t.lookup(0xffffffffc0001004).unwrap().sprint(),
            "m_one+0x4/0x30 [mymod]"
        );
        assert_eq!(
            t.lookup(0xffffffffc0001040).unwrap().sprint(),
            "m_two+0x10/0x20 [mymod]"
        );
        // BPF programs print no module.
        assert_eq!(
            t.lookup(0xffffffffc0002010).unwrap().sprint(),
            "bpf_prog_abc_x+0x10/0x100"
        );
        // Past the last module symbol (the pseudo-module's are not kept): unnamed.
        assert_eq!(t.lookup(0xffffffffc0003000), None);
    }

    #[test]
    fn lookup_name_prefers_core() {
        let t = Symbols::parse(TEXT);
        assert_eq!(t.lookup_name("bar"), Some(0xffffffff81000080));
        assert_eq!(t.lookup_name("mymod:bar"), Some(0xffffffffc0001050));
        assert_eq!(t.lookup_name("foo_alias"), Some(0xffffffff81000040));
        assert_eq!(t.lookup_name("m_three"), Some(0xffffffffc0002100));
        assert_eq!(t.lookup_name("nope"), None);
        assert_eq!(t.lookup_name(""), None);
        assert_eq!(t.lookup_name("ftrace_trampoline"), None);
    }

    #[test]
    fn zero_addresses_name_nothing() {
        let t = Symbols::parse("0000000000000000 T _stext\n0000000000000000 T foo\n");
        assert_eq!(t.lookup(0), None);
        assert_eq!(t.lookup(0xffffffff81000000), None);
    }
}
