//! (family under construction)
use super::Control;

pub static CONTROLS: &[Control] = &[];
