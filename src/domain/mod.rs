//! The pure domain: ticket events, commands and the aggregate that decides between them.

pub mod events;
pub mod ticket;
pub mod upcast;

pub use events::*;
pub use ticket::*;

#[cfg(test)]
mod tests;
