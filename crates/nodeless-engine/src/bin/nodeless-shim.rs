//! The per-container shim as its own small binary (the `nodeless` binary offers the same as `nodeless shim`).
fn main() {
    std::process::exit(nodeless_engine::shim_main(
        std::env::args_os().skip(1).collect(),
    ));
}
