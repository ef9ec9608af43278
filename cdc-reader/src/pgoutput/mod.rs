//! pgoutput decoder. (being written)
