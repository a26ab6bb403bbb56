//! The plan: pending exports as a report, per object and per attribute (old -> new), as a
//! human table, JSON or CSV (the equivalent of csexport + CSExportAnalyzer).

use crate::model::{AttributeChange, Value};
use crate::store::{self, PendingExport, Result};
use rusqlite::Connection;
use serde::Serialize;
use std::collections::BTreeMap;

/// One attribute line of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributePlan {
    /// Attribute.
    pub attribute: String,
    /// `add`, `remove` or `replace`.
    pub operation: String,
    /// Values before (from the connector space).
    pub old: Vec<String>,
    /// Values after (for add/remove: the values added or removed).
    pub new: Vec<String>,
}

/// One object of the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectPlan {
    /// Target connector.
    pub connector: String,
    /// `add`, `update`, `rename`, `delete`.
    pub operation: String,
    /// DN in the target.
    pub dn: String,
    /// New DN for a rename/move.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_dn: Option<String>,
    /// Object type.
    pub object_type: String,
    /// Attribute changes.
    pub attributes: Vec<AttributePlan>,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Last export error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Summary counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanSummary {
    /// Adds.
    pub adds: u64,
    /// Updates (including renames).
    pub updates: u64,
    /// Renames/moves.
    pub renames: u64,
    /// Deletes.
    pub deletes: u64,
}

/// All pending exports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Counts.
    pub summary: PlanSummary,
    /// Objects.
    pub objects: Vec<ObjectPlan>,
}

fn texts(v: &[Value]) -> Vec<String> {
    v.iter().map(Value::to_text).collect()
}

/// Builds the plan from the stored pending exports.
pub fn build(c: &Connection) -> Result<Plan> {
    let names = store::connector_names(c)?;
    let mut plan = Plan::default();
    for p in store::pending_list(c, None)? {
        let o = object_plan(c, &names, p)?;
        match o.operation.as_str() {
            "rename" => {
                plan.summary.renames += 1;
                plan.summary.updates += 1;
            }
            "update" => plan.summary.updates += 1,
            "add" => plan.summary.adds += 1,
            _ => plan.summary.deletes += 1,
        }
        plan.objects.push(o);
    }
    Ok(plan)
}

/// One pending export as a plan line: the operation (`add`, `update`, `rename`, `delete`)
/// and per attribute the values the connector space holds now and the values written.
pub fn object_plan(
    c: &Connection,
    names: &BTreeMap<i64, String>,
    p: PendingExport,
) -> Result<ObjectPlan> {
    let cs = store::cs_get(c, p.cs_id)?;
    let old_attrs = cs
        .as_ref()
        .map(|o| o.effective_attributes().clone())
        .unwrap_or_default();
    let attributes = p
        .changes
        .iter()
        .map(|ch| {
            let old = texts(old_attrs.get(ch.name()).map(Vec::as_slice).unwrap_or(&[]));
            let (op, new) = match ch {
                AttributeChange::Add { values, .. } => ("add", texts(values)),
                AttributeChange::Remove { values, .. } => ("remove", texts(values)),
                AttributeChange::Replace { values, .. } => ("replace", texts(values)),
            };
            AttributePlan {
                attribute: ch.name().to_string(),
                operation: op.into(),
                old: if p.op == "add" { Vec::new() } else { old },
                new,
            }
        })
        .collect();
    let operation = match (p.op.as_str(), &p.new_dn) {
        ("update", Some(_)) => "rename",
        ("update", None) => "update",
        ("add", _) => "add",
        _ => "delete",
    };
    Ok(ObjectPlan {
        connector: names.get(&p.connector_id).cloned().unwrap_or_default(),
        operation: operation.into(),
        dn: p.dn,
        new_dn: p.new_dn,
        object_type: cs.map(|o| o.object_type).unwrap_or_default(),
        attributes,
        attempts: p.attempts,
        last_error: p.last_error,
    })
}

impl ObjectPlan {
    /// The object as the plan table shows it: a line with the operation, connector and DN,
    /// then one line per attribute change.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{:<8} {:<10} {}",
            self.operation.to_uppercase(),
            self.connector,
            self.dn
        );
        if let Some(n) = &self.new_dn {
            out.push_str(&format!(" -> {n}"));
        }
        if let Some(e) = &self.last_error {
            out.push_str(&format!("   [failed {}x: {e}]", self.attempts));
        }
        out.push('\n');
        for a in &self.attributes {
            let old = a.old.join("; ");
            let new = a.new.join("; ");
            match a.operation.as_str() {
                "replace" => out.push_str(&format!(
                    "           {:<24} {} -> {}\n",
                    a.attribute,
                    if old.is_empty() { "(none)" } else { &old },
                    if new.is_empty() { "(none)" } else { &new }
                )),
                op => out.push_str(&format!("           {:<24} {op} {new}\n", a.attribute)),
            }
        }
        out
    }
}

impl Plan {
    /// A human table.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "Pending exports: {} add, {} update ({} rename), {} delete\n",
            self.summary.adds, self.summary.updates, self.summary.renames, self.summary.deletes
        );
        for o in &self.objects {
            out.push_str(&o.to_text());
        }
        out
    }

    /// CSV with one row per attribute change (objects without attributes get one row).
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "connector",
            "operation",
            "dn",
            "new_dn",
            "object_type",
            "attribute",
            "attribute_operation",
            "old",
            "new",
        ]);
        for o in &self.objects {
            let base = [
                o.connector.as_str(),
                o.operation.as_str(),
                o.dn.as_str(),
                o.new_dn.as_deref().unwrap_or(""),
                o.object_type.as_str(),
            ];
            if o.attributes.is_empty() {
                let _ = w.write_record(base.iter().copied().chain(["", "", "", ""]));
            }
            for a in &o.attributes {
                let old = a.old.join(";");
                let new = a.new.join(";");
                let _ = w.write_record(base.iter().copied().chain([
                    a.attribute.as_str(),
                    a.operation.as_str(),
                    old.as_str(),
                    new.as_str(),
                ]));
            }
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}
