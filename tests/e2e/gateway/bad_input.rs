//! Hostile and broken input at the gateway.
