//! The command line: one clap struct per subcommand, every number checked
//! against its range, converted into the library's scenarios and options by
//! [`parse`], the one path `main` and the tests share.

mod any_server;
mod args;
mod doctor;
mod extras;
mod feed;
mod files;
mod invocation;
mod limit;
mod numbers;
mod server;

pub use any_server::AnyServerArgs;
pub use args::{Cli, Command};
pub use doctor::DoctorArgs;
pub use extras::{ChatArgs, EchoArgs, ExtraOut, FaultArgs};
pub use feed::{RunArgs, StackList, SuiteArgs, WireList};
pub use files::{default_out_dir, CompareArgs, MergeArgs, ReportArgs, ServeArgs, ServeBareArgs};
pub use invocation::{parse, Invocation, Measure};
pub use limit::LimitArgs;
pub use numbers::{parse_percent, parse_ramp, Ramp};
pub use server::ServerArgs;
