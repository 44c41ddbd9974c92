//! SQL text shared by the migrations that write constraints from Rust lists.

/// `'a', 'b'`: `values` as SQL string literals for an `IN (…)` list. The values are the
/// migrations' own constants, never input: none contains a quote.
pub fn quoted_list(values: &[&str]) -> String {
    debug_assert!(values.iter().all(|value| !value.contains('\'')));
    values
        .iter()
        .map(|value| format!("'{value}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
