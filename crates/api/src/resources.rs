//! The served resources and where each is kept in the store.
