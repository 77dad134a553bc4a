//! `rockslot-cli`: see [`rockslot::cli`].

use clap::Parser;

fn main() {
    let args = rockslot::cli::Args::parse();
    match rockslot::cli::main_with(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
    }
}
