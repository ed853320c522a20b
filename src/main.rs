//! The `pixeltrack` binary: all of it lives in the library; this only reports errors.

#![forbid(unsafe_code)]

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(pixeltrack::cli::main());
}
