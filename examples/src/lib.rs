//! Runnable examples of the paved library; see the `*.rs` files beside this crate's
//! `Cargo.toml` and run one with `cargo run -p paved-examples --example NAME`.
