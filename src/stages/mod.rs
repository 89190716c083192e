//! Stage kinds, one folder each. To add a kind, add a folder with a `mod.rs` holding one `impl Stage for …`:
//! `build.rs` declares the module, registers the kind, and fingerprints the code it reaches. A folder named
//! `debug_*` is a testing aid, registered only when `ALINEA_DEBUG_STAGES=1`.

include!(concat!(env!("OUT_DIR"), "/stage_registry.rs"));

/// Every stage kind of this build.
pub fn registry() -> alinea_engine::Registry {
    let mut registry = alinea_engine::Registry::default();
    register_all(
        &mut registry,
        std::env::var("ALINEA_DEBUG_STAGES").is_ok_and(|v| v == "1"),
    );
    registry
}
