//! Sets the linker options a Node.js addon needs.
fn main() {
    napi_build::setup();
}
