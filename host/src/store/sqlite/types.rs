//! Activity types and their deployed versions in the SQLite store.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{StoreError, TypeChange, TypeRecord, VersionRecord, refusals};

/// Every type, or the one named.
pub fn read(conn: &Connection, name: Option<&str>) -> Result<Vec<TypeRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, current_version, settings, updated_at FROM activity_types
         WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([name], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
    })?;
    let mut types = Vec::new();
    for row in rows {
        let (name, current_version, settings, updated_at) = row?;
        let versions = versions(conn, &name)?;
        types.push(TypeRecord {
            name,
            current_version,
            settings: serde_json::from_str(&settings)?,
            updated_at: updated_at as u64,
            versions,
        });
    }
    Ok(types)
}

fn versions(conn: &Connection, name: &str) -> Result<Vec<VersionRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT label, hash, size, deployed_at, deployed_by FROM type_versions WHERE activity_type = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([name], |r| {
        Ok(VersionRecord {
            label: r.get(0)?,
            hash: r.get(1)?,
            size: r.get::<_, i64>(2)? as u64,
            deployed_at: r.get::<_, i64>(3)? as u64,
            deployed_by: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Applies a change inside the writer's transaction.
pub fn change(conn: &Connection, c: &TypeChange) -> Result<TypeRecord, StoreError> {
    let name = c.name.as_str();
    let exists: bool = conn
        .prepare_cached("SELECT 1 FROM activity_types WHERE name = ?1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some();
    if !exists {
        if c.add_version.is_none() && c.settings.is_none() {
            return Err(refusals::no_type(name));
        }
        conn.prepare_cached("INSERT INTO activity_types (name, settings, updated_at) VALUES (?1, '{}', ?2)")?
            .execute(params![name, c.now as i64])?;
    }
    if let Some(v) = &c.add_version {
        let existing: Option<String> = conn
            .prepare_cached("SELECT hash FROM type_versions WHERE activity_type = ?1 AND label = ?2")?
            .query_row([name, &v.label], |r| r.get(0))
            .optional()?;
        match existing {
            Some(hash) if hash == v.hash => {}
            Some(hash) => {
                return Err(refusals::label_taken(name, &v.label, &hash));
            }
            None => {
                conn.prepare_cached(
                    "INSERT INTO type_versions (activity_type, label, hash, size, deployed_at, deployed_by, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                        (SELECT COALESCE(MAX(seq), 0) + 1 FROM type_versions WHERE activity_type = ?1))",
                )?
                .execute(params![
                    name,
                    v.label,
                    v.hash,
                    v.size as i64,
                    v.deployed_at as i64,
                    v.deployed_by
                ])?;
            }
        }
    }
    if let Some(label) = &c.make_current {
        let known = versions(conn, name)?.iter().any(|v| &v.label == label);
        if !known {
            return Err(refusals::no_version(name, label));
        }
        conn.prepare_cached("UPDATE activity_types SET current_version = ?2 WHERE name = ?1")?
            .execute([name, label])?;
    }
    if let Some(label) = &c.remove_version {
        remove(conn, name, label)?;
    }
    if let Some(settings) = &c.settings {
        conn.prepare_cached("UPDATE activity_types SET settings = ?2 WHERE name = ?1")?
            .execute([name, &serde_json::to_string(settings)?])?;
    }
    conn.prepare_cached("UPDATE activity_types SET updated_at = ?2 WHERE name = ?1")?
        .execute(params![name, c.now as i64])?;
    read(conn, Some(name))?.pop().ok_or_else(|| StoreError::Backend(format!("type {name} vanished")))
}

fn remove(conn: &Connection, name: &str, label: &str) -> Result<(), StoreError> {
    let current: Option<String> = conn
        .prepare_cached("SELECT current_version FROM activity_types WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?;
    if current.as_deref() == Some(label) {
        return Err(refusals::current(name, label));
    }
    let users: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM executions WHERE activity_type = ?1 AND closed_at IS NULL
               AND (json_extract(options, '$.pinned_version') = ?2 OR json_extract(state, '$.version') = ?2)",
        )?
        .query_row([name, label], |r| r.get(0))?;
    if users > 0 {
        return Err(refusals::in_use(name, label, users));
    }
    let removed = conn
        .prepare_cached("DELETE FROM type_versions WHERE activity_type = ?1 AND label = ?2")?
        .execute([name, label])?;
    if removed == 0 {
        return Err(refusals::no_version(name, label));
    }
    Ok(())
}
