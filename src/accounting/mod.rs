//! Prices, usage -> cost, audit records (issue 4).
