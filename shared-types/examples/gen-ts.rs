//! Writes the contract's TypeScript definitions: `gen-ts <dir>` (see `scripts/gen-types`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: gen-ts <output dir>");
        return ExitCode::from(2);
    };
    match shared_types::typescript::export(std::path::Path::new(&dir)) {
        Ok(files) => {
            eprintln!("wrote {} files to {}", files.len(), dir.to_string_lossy());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: generating TypeScript: {error}");
            ExitCode::FAILURE
        }
    }
}
