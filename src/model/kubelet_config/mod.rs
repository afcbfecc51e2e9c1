//! The kubelet's configuration as the kubelet itself loads it.
//!
//! - [`settings`]: the `KubeletConfiguration` fields the controls use (path, flag, type,
//!   defaults in both of the kubelet's modes);
//! - [`flags`]: the command line, parsed as the kubelet's flag library parses it;
//! - [`loading`]: the loading rules that change between kubelet versions;
//! - [`effective`]: flags, `--config` and drop-ins merged with the kubelet's precedence
//!   into an [`EffectiveConfig`], with the [`Source`] of every value.

pub mod configz;
pub mod effective;
pub mod flags;
pub mod loading;
pub mod settings;

pub use effective::{ConfigInput, EffectiveConfig, Lookup, Setting, Source};
