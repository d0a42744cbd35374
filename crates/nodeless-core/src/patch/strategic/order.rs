//! The order of merged lists, as upstream's `normalizeElementOrder` sets it: patched items
//! in the order the patch (or its `$setElementOrder`) gives, server-only items in their old
//! order, the two interleaved by where they stood in the original list.

use super::list::no_merge_key;
use super::{failed, DIRECTIVE};
use crate::patch::PatchError;
use serde_json::Value;

/// What identifies each item: its merge key's value, or the item itself for primitives.
pub(super) fn identities(
    items: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    items
        .iter()
        .map(|item| identity(item, merge_key).cloned())
        .collect()
}

fn identity<'v>(item: &'v Value, merge_key: Option<&str>) -> Result<&'v Value, PatchError> {
    let Some(key) = merge_key else {
        return Ok(item);
    };
    match item {
        Value::Object(m) => m.get(key).ok_or_else(|| no_merge_key(item, key)),
        other => Err(failed(format!(
            "expected a map in a list merged by {key}, but found {other}"
        ))),
    }
}

/// Orders `merged`: items whose identity is in `patch_order` follow it; the others keep
/// `server_order`; then the two runs are interleaved by their places in `server_order`.
pub(super) fn enforce(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let mut patched = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        let id = identity(&item, merge_key)?.clone();
        if patch_order.contains(&id) {
            patched.push((id, item));
        } else {
            server_only.push((id, item));
        }
    }
    // Items missing from the order list sort last; a stable sort keeps duplicates as they came.
    patched.sort_by_key(|(id, _)| position(patch_order, id).unwrap_or(usize::MAX));
    server_only.sort_by_key(|(id, _)| position(server_order, id).unwrap_or(usize::MAX));
    Ok(interleave(server_only, patched, server_order))
}

fn position(order: &[Value], id: &Value) -> Option<usize> {
    order.iter().position(|o| o == id)
}

/// Upstream's `mergeSortedSlice`: a server-only item goes first only when both it and the
/// next patched item were in the original list and it stood earlier there. So new items
/// come before the server-only items that follow them.
fn interleave(
    server_only: Vec<(Value, Value)>,
    patched: Vec<(Value, Value)>,
    server_order: &[Value],
) -> Vec<Value> {
    let mut out = Vec::with_capacity(server_only.len() + patched.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patched.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some((l, _)), Some((r, _))) => {
                matches!((position(server_order, l), position(server_order, r)), (Some(li), Some(ri)) if li < ri)
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|(_, item)| item));
    }
    out
}

/// Upstream's `validatePatchWithSetOrderList`: the patch list's items (deletions aside) must
/// appear in `$setElementOrder` in the same relative order.
pub(super) fn validate_patch_order(
    patch: &[Value],
    wanted: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if patch.is_empty() || wanted.is_empty() {
        return Ok(());
    }
    let is_deletion = |v: &Value| {
        merge_key.is_some() && v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete")
    };
    let plain: Vec<&Value> = patch.iter().filter(|v| !is_deletion(v)).collect();
    let (mut p, mut w) = (0, 0);
    while p < plain.len() && w < wanted.len() {
        if plain[p].get(DIRECTIVE).is_some() {
            p += 1;
            continue;
        }
        if identity(plain[p], merge_key)? == identity(&wanted[w], merge_key)? {
            p += 1;
        }
        w += 1;
    }
    if p < plain.len() {
        let patch = Value::Array(patch.to_vec());
        let wanted = Value::Array(wanted.to_vec());
        return Err(failed(format!(
            "the order in patch list {patch} doesn't match $setElementOrder list {wanted}"
        )));
    }
    Ok(())
}

/// The live order upstream's `$setElementOrder` handling really compares against. Go merges
/// the list in the original's storage: `$patch: delete` shifts the survivors left and new
/// items are appended into the freed slots, and the original slice (same storage, same
/// length) is read afterwards. Upstream's own expected results depend on this, e.g. an item
/// added while another is deleted lands after the server-only items that followed it.
pub(super) fn as_go_sees_it(mut slots: Vec<Value>, patch: &[Value], key: &str) -> Vec<Value> {
    let mut len = slots.len();
    let mut replaced = false;
    for item in patch {
        match item.get(DIRECTIVE).and_then(Value::as_str) {
            Some("delete") => {
                let Some(id) = item.get(key) else { continue };
                // Go's `append(s[:k], s[k+1:]...)`: the last slot keeps its old value.
                while let Some(k) = slots[..len].iter().position(|s| s == id) {
                    for i in k..len - 1 {
                        slots[i] = slots[i + 1].clone();
                    }
                    len -= 1;
                }
            }
            Some("replace") => replaced = true,
            _ => {}
        }
    }
    if replaced {
        // The merged list then lives in other storage.
        return slots;
    }
    let mut appended: Vec<&Value> = Vec::new();
    for item in patch.iter().filter(|i| i.get(DIRECTIVE).is_none()) {
        let Some(id) = item.get(key) else { continue };
        if !slots[..len].contains(id) && !appended.contains(&id) {
            if let Some(slot) = slots.get_mut(len + appended.len()) {
                *slot = id.clone();
            }
            appended.push(id);
        }
    }
    slots
}
