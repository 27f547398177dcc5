//! `utracefs`: arguments, logging, then the daemon's two ways to start: mount on a directory,
//! or `run` a command with the clone as the machine's tracefs. Everything else lives in the
//! library.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use utracefs::daemon::{CloneArgs, run, serve};

/// A FUSE clone of Linux tracefs with a lazily built eventfs tree.
#[derive(Parser, Debug)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    /// Directory to mount on (as root with mount(2), as anyone else through fusermount3).
    #[arg(required = true)]
    mountpoint: Option<PathBuf>,
    #[command(flatten)]
    clone: CloneArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run COMMAND with the clone as the machine's tracefs.
    ///
    /// In a private mount namespace (in a user namespace of its own when not root) the clone
    /// is at /sys/kernel/tracing and over every other tracefs mount, TRACEFS_PATH names it,
    /// and trace-cmd's writes to /proc/sys/kernel/{ftrace_enabled,kptr_restrict} go to
    /// private copies. Exits with COMMAND's status (127: not found, 128+N: killed by signal
    /// N), leaving no mount behind.
    Run {
        #[command(flatten)]
        clone: CloneArgs,
        /// The command and its arguments (after `--`).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour escapes only on a terminal: logs sent to a file or a pipe stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match (&args.command, &args.mountpoint) {
        (Some(Command::Run { clone, command }), _) => run::run(clone, command),
        (None, Some(mp)) => serve::mount_and_serve(&args.clone, mp).map(|()| 0),
        (None, None) => unreachable!("clap requires a mount point without a subcommand"),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(msg) => {
            eprintln!("utracefs: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
