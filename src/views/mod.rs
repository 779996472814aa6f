//! What the service shows of its records, apart from who asks and how: the
//! ticket's JSON view and the masking of a reporter's personal data ([`ticket`]).
//! The commands (`app`) and the API (`http`) both render through here, so `app`
//! needs nothing of `http`.

pub mod ticket;
