//! Full and delta import.
//!
//! Full import lists `/users` (with `$expand=manager`), `/groups` (members through
//! `/groups/{id}/members`), `/contacts` and `/devices`, with `$select`, `$top` and
//! `@odata.nextLink` paging. Before listing, it takes `$deltatoken=latest` links for users and
//! groups, so changes made while it lists are seen again by the next delta import.
//!
//! Delta import follows the stored deltaLinks; changed objects carry only changed properties
//! and are merged onto what the connector space holds; `@removed` entries become deletes.

use super::http::GraphHttp;
use super::settings::GraphSettings;
use super::{
    CONTACT_PROPERTIES, DEVICE_PROPERTIES, GROUP_PROPERTIES, Kind, USER_PROPERTIES, json_to_values,
    synthetic_dn,
};
use crate::connectors::{ConnectorError, ConnectorSpaceView, ImportChange, ImportSink};
use crate::model::{Object, Value};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::HashMap;

/// The delta watermark: one deltaLink per collection.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DeltaState {
    /// `/users/delta` link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<String>,
    /// `/groups/delta` link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

fn props_for(kind: Kind, s: &GraphSettings) -> Vec<String> {
    let (base, extra): (&[&str], &[String]) = match kind {
        Kind::User => (USER_PROPERTIES, &s.extra_user_properties),
        Kind::Group => (GROUP_PROPERTIES, &s.extra_group_properties),
        Kind::Contact => (CONTACT_PROPERTIES, &[]),
        Kind::Device => (DEVICE_PROPERTIES, &[]),
    };
    let mut v: Vec<String> = std::iter::once("id")
        .chain(base.iter().copied())
        .map(str::to_string)
        .chain(extra.iter().cloned())
        .collect();
    if matches!(kind, Kind::User | Kind::Group) {
        v.push(s.anchor_extension());
    }
    v
}

fn enabled(s: &GraphSettings, k: Kind) -> bool {
    s.object_types
        .iter()
        .any(|t| Kind::from_object_type(t) == Some(k))
}

/// Maps a Graph property name to the attribute name (the anchor extension gets its short name).
fn attr_name(s: &GraphSettings, prop: &str) -> String {
    if prop.eq_ignore_ascii_case(&s.anchor_extension()) {
        s.anchor_attribute.clone()
    } else {
        prop.to_string()
    }
}

fn ref_of(v: &Json, default: Kind) -> Option<Value> {
    let id = v["id"].as_str()?;
    let kind = v["@odata.type"]
        .as_str()
        .and_then(Kind::from_odata)
        .unwrap_or(default);
    Some(Value::Ref(synthetic_dn(kind, id).to_string()))
}

/// Builds an object from a full Graph entity.
fn to_object(s: &GraphSettings, kind: Kind, v: &Json) -> Option<Object> {
    let id = v["id"].as_str()?;
    let mut o = Object::new(
        Some(id.to_string()),
        synthetic_dn(kind, id),
        kind.object_type(),
    );
    apply_props(s, &mut o, v);
    if let Some(m) = v.get("manager").filter(|m| m.is_object())
        && let Some(r) = ref_of(m, Kind::User)
    {
        o.set("manager", vec![r]);
    }
    Some(o)
}

/// Applies the plain properties of a (possibly partial) entity; null removes.
fn apply_props(s: &GraphSettings, o: &mut Object, v: &Json) {
    let Some(map) = v.as_object() else { return };
    for (k, val) in map {
        if k.contains('@') || k == "manager" || k == "members" {
            continue;
        }
        let vals = if k == "id" {
            vec![Value::Str(val.as_str().unwrap_or_default().to_string())]
        } else {
            json_to_values(val)
        };
        o.set(&attr_name(s, k), vals);
    }
}

/// Follows `@odata.nextLink` pages of `path`, calling `f` for each entity; returns the final
/// `@odata.deltaLink` when the collection is a delta query.
async fn pages(
    http: &GraphHttp,
    path: &str,
    mut f: impl FnMut(&Json) -> Result<(), ConnectorError>,
) -> Result<Option<String>, ConnectorError> {
    let mut next = Some(path.to_string());
    let mut n = 0u64;
    while let Some(p) = next.take() {
        let v = http.get_json(&p).await?;
        if let Some(items) = v["value"].as_array() {
            for it in items {
                f(it)?;
                n += 1;
            }
        }
        if let Some(l) = v["@odata.nextLink"].as_str() {
            next = Some(l.to_string());
        } else if let Some(d) = v["@odata.deltaLink"].as_str() {
            tracing::debug!(path = %path.split('?').next().unwrap_or(""), entities = n, "graph: delta round complete");
            return Ok(Some(d.to_string()));
        }
    }
    Ok(None)
}

fn delta_path(kind: Kind, s: &GraphSettings) -> String {
    let mut sel = props_for(kind, s);
    match kind {
        Kind::User => sel.push("manager".into()),
        Kind::Group => sel.push("members".into()),
        _ => {}
    }
    format!("/{}/delta?$select={}", kind.collection(), sel.join(","))
}

/// Full import; returns the watermark (JSON deltaLinks).
pub async fn full(
    http: &GraphHttp,
    s: &GraphSettings,
    sink: &mut dyn ImportSink,
) -> Result<String, ConnectorError> {
    let mut state = DeltaState::default();
    for kind in [Kind::User, Kind::Group] {
        if !enabled(s, kind) {
            continue;
        }
        let v = http
            .get_json(&format!("{}&$deltatoken=latest", delta_path(kind, s)))
            .await?;
        let link = v["@odata.deltaLink"].as_str().map(str::to_string);
        match kind {
            Kind::User => state.users = link,
            _ => state.groups = link,
        }
    }
    let top = s.page_size;
    let mut count = 0u64;
    if enabled(s, Kind::User) {
        let path = format!(
            "/users?$select={}&$top={top}&$expand=manager($select=id)",
            props_for(Kind::User, s).join(",")
        );
        pages(http, &path, |v| {
            if let Some(o) = to_object(s, Kind::User, v) {
                count += 1;
                sink.push(ImportChange::Upsert(o))?;
            }
            Ok(())
        })
        .await?;
    }
    for kind in [Kind::Contact, Kind::Device] {
        if !enabled(s, kind) {
            continue;
        }
        let path = format!(
            "/{}?$select={}&$top={top}",
            kind.collection(),
            props_for(kind, s).join(",")
        );
        pages(http, &path, |v| {
            if let Some(o) = to_object(s, kind, v) {
                count += 1;
                sink.push(ImportChange::Upsert(o))?;
            }
            Ok(())
        })
        .await?;
    }
    if enabled(s, Kind::Group) {
        let mut groups = Vec::new();
        let path = format!(
            "/groups?$select={}&$top={top}",
            props_for(Kind::Group, s).join(",")
        );
        pages(http, &path, |v| {
            if let Some(o) = to_object(s, Kind::Group, v) {
                groups.push(o);
            }
            Ok(())
        })
        .await?;
        // Members, a few groups at a time.
        let mut stream = futures_util::stream::iter(groups.into_iter().map(|g| async move {
            let id = g.anchor.clone().unwrap_or_default();
            let mut members = Vec::new();
            pages(
                http,
                &format!("/groups/{id}/members?$select=id&$top=999"),
                |m| {
                    if let Some(r) = ref_of(m, Kind::User) {
                        members.push(r);
                    }
                    Ok(())
                },
            )
            .await
            .map(|_| (g, members))
        }))
        .buffered(s.concurrency.max(1));
        while let Some(r) = stream.next().await {
            let (mut g, members) = r?;
            g.set("member", members);
            count += 1;
            sink.push(ImportChange::Upsert(g))?;
        }
    }
    tracing::info!(objects = count, "graph: full import done");
    serde_json::to_string(&state).map_err(|e| ConnectorError::Protocol(e.to_string()))
}

/// Delta import from the stored watermark; returns the new watermark.
pub async fn delta(
    http: &GraphHttp,
    s: &GraphSettings,
    watermark: &str,
    cs: &dyn ConnectorSpaceView,
    sink: &mut dyn ImportSink,
) -> Result<String, ConnectorError> {
    let state: DeltaState = serde_json::from_str(watermark).map_err(|e| {
        ConnectorError::WatermarkExpired(format!("unreadable Graph watermark: {e}"))
    })?;
    let mut out = DeltaState::default();
    let mut count = 0u64;
    // An object can appear more than once in one delta round (large member lists come in
    // several pages): later entries merge onto what earlier ones produced.
    let mut merged: HashMap<String, Object> = HashMap::new();
    for kind in [Kind::User, Kind::Group] {
        if !enabled(s, kind) {
            continue;
        }
        let link = match kind {
            Kind::User => state.users.as_deref(),
            _ => state.groups.as_deref(),
        };
        let Some(link) = link else {
            return Err(ConnectorError::WatermarkExpired(format!(
                "no delta link for {}",
                kind.collection()
            )));
        };
        let new_link = pages(http, link, |v| {
            count += 1;
            if let Some(change) = merge(s, kind, v, cs, &merged) {
                match &change {
                    ImportChange::Upsert(o) => {
                        if let Some(a) = &o.anchor {
                            merged.insert(a.clone(), o.clone());
                        }
                    }
                    ImportChange::Delete { anchor } => {
                        merged.remove(anchor);
                    }
                }
                sink.push(change)?;
            }
            Ok(())
        })
        .await?;
        let Some(new_link) = new_link else {
            return Err(ConnectorError::Protocol(format!(
                "{} delta ended without a deltaLink",
                kind.collection()
            )));
        };
        match kind {
            Kind::User => out.users = Some(new_link),
            _ => out.groups = Some(new_link),
        }
    }
    tracing::info!(changes = count, "graph: delta import done");
    serde_json::to_string(&out).map_err(|e| ConnectorError::Protocol(e.to_string()))
}

/// Turns one delta entry into a change, merged onto the connector space's copy.
fn merge(
    s: &GraphSettings,
    kind: Kind,
    v: &Json,
    cs: &dyn ConnectorSpaceView,
    merged: &HashMap<String, Object>,
) -> Option<ImportChange> {
    let id = v["id"].as_str()?;
    if v.get("@removed").is_some() {
        return Some(ImportChange::Delete {
            anchor: id.to_string(),
        });
    }
    let mut o = merged
        .get(id)
        .cloned()
        .or_else(|| cs.by_anchor(id))
        .filter(|o| o.object_type == kind.object_type())
        .unwrap_or_else(|| {
            Object::new(
                Some(id.to_string()),
                synthetic_dn(kind, id),
                kind.object_type(),
            )
        });
    o.anchor = Some(id.to_string());
    o.dn = synthetic_dn(kind, id);
    o.set("id", vec![Value::Str(id.to_string())]);
    apply_props(s, &mut o, v);
    if let Some(m) = v.get("manager@delta").and_then(Json::as_array) {
        let r: Vec<Value> = m
            .iter()
            .filter(|x| x.get("@removed").is_none())
            .filter_map(|x| ref_of(x, Kind::User))
            .take(1)
            .collect();
        o.set("manager", r);
    }
    if let Some(ms) = v.get("members@delta").and_then(Json::as_array) {
        let mut cur: Vec<Value> = o.values("member").to_vec();
        for m in ms {
            let Some(r) = ref_of(m, Kind::User) else {
                continue;
            };
            if m.get("@removed").is_some() {
                cur.retain(|x| x != &r);
            } else if !cur.contains(&r) {
                cur.push(r);
            }
        }
        o.set("member", cur);
    }
    Some(ImportChange::Upsert(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dn;

    struct Empty;
    impl ConnectorSpaceView for Empty {
        fn by_anchor(&self, _: &str) -> Option<Object> {
            None
        }
        fn by_dn(&self, _: &Dn) -> Option<Object> {
            None
        }
        fn descendants(&self, _: &Dn) -> Vec<Object> {
            Vec::new()
        }
    }

    #[test]
    fn repeated_delta_entries_accumulate_members() {
        let s: GraphSettings = serde_json::from_value(serde_json::json!({
            "tenant_id": "t", "client_id": "c", "client_secret_env": "X"}))
        .unwrap();
        let g = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let m1 = "1f8fad5b-d9cb-469f-a165-70867728950e";
        let m2 = "2f8fad5b-d9cb-469f-a165-70867728950e";
        let mut merged = HashMap::new();
        let first = serde_json::json!({"id": g, "displayName": "G",
            "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": m1}]});
        let Some(ImportChange::Upsert(o)) = merge(&s, Kind::Group, &first, &Empty, &merged) else {
            panic!("upsert expected");
        };
        merged.insert(g.to_string(), o);
        let second = serde_json::json!({"id": g,
            "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": m2}]});
        let Some(ImportChange::Upsert(o)) = merge(&s, Kind::Group, &second, &Empty, &merged) else {
            panic!("upsert expected");
        };
        assert_eq!(o.values("member").len(), 2);
        assert_eq!(o.first_text("displayName").as_deref(), Some("G"));
        let gone = serde_json::json!({"id": m1, "@removed": {"reason": "changed"}});
        assert_eq!(
            merge(&s, Kind::User, &gone, &Empty, &merged),
            Some(ImportChange::Delete { anchor: m1.into() })
        );
    }
}
