//! The `pixeltrack` binary: all of it lives in the library; this only reports errors.

fn main() {
    std::process::exit(pixeltrack::cli::main());
}
