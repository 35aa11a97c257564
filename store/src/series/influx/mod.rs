//! (being written)
#![allow(dead_code)]
