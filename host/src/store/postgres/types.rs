//! Activity types and their deployed versions in the PostgreSQL store; a
//! change runs in its own transaction, under a lock on the type's name (two
//! hosts deploying the same type take turns).

use deadpool_postgres::GenericClient;

use crate::store::{StoreError, TypeChange, TypeRecord, VersionRecord, refusals};

/// Every type, or the one named.
pub async fn read(client: &impl GenericClient, name: Option<&str>) -> Result<Vec<TypeRecord>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT name, current_version, settings, updated_at FROM activity_types
             WHERE $1::text IS NULL OR name = $1 ORDER BY name",
        )
        .await?;
    let mut types = Vec::new();
    for row in client.query(&stmt, &[&name]).await? {
        let name: String = row.get(0);
        let settings: &str = row.get(2);
        types.push(TypeRecord {
            versions: versions(client, &name).await?,
            current_version: row.get(1),
            settings: serde_json::from_str(settings)?,
            updated_at: row.get::<_, i64>(3) as u64,
            name,
        });
    }
    Ok(types)
}

async fn versions(client: &impl GenericClient, name: &str) -> Result<Vec<VersionRecord>, StoreError> {
    let stmt = client
        .prepare_cached(
            "SELECT label, hash, size, deployed_at, deployed_by FROM type_versions WHERE activity_type = $1
             ORDER BY seq",
        )
        .await?;
    Ok(client
        .query(&stmt, &[&name])
        .await?
        .iter()
        .map(|r| VersionRecord {
            label: r.get(0),
            hash: r.get(1),
            size: r.get::<_, i64>(2) as u64,
            deployed_at: r.get::<_, i64>(3) as u64,
            deployed_by: r.get(4),
        })
        .collect())
}

/// Applies a change inside the caller's transaction.
pub async fn change(tx: &impl GenericClient, c: &TypeChange) -> Result<TypeRecord, StoreError> {
    let name = c.name.as_str();
    let now = c.now as i64;
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 1))", &[&name]).await?;
    let exists = tx.query_opt("SELECT 1 FROM activity_types WHERE name = $1", &[&name]).await?.is_some();
    if !exists {
        if c.add_version.is_none() && c.settings.is_none() {
            return Err(refusals::no_type(name));
        }
        tx.execute("INSERT INTO activity_types (name, settings, updated_at) VALUES ($1, '{}', $2)", &[&name, &now])
            .await?;
    }
    if let Some(v) = &c.add_version {
        let existing: Option<String> = tx
            .query_opt("SELECT hash FROM type_versions WHERE activity_type = $1 AND label = $2", &[&name, &v.label])
            .await?
            .map(|r| r.get(0));
        match existing {
            Some(hash) if hash == v.hash => {}
            Some(hash) => {
                return Err(refusals::label_taken(name, &v.label, &hash));
            }
            None => {
                tx.execute(
                    "INSERT INTO type_versions (activity_type, label, hash, size, deployed_at, deployed_by, seq)
                     VALUES ($1, $2, $3, $4, $5, $6,
                        (SELECT COALESCE(MAX(seq), 0) + 1 FROM type_versions WHERE activity_type = $1))",
                    &[&name, &v.label, &v.hash, &(v.size as i64), &(v.deployed_at as i64), &v.deployed_by],
                )
                .await?;
            }
        }
    }
    if let Some(label) = &c.make_current {
        if !versions(tx, name).await?.iter().any(|v| &v.label == label) {
            return Err(refusals::no_version(name, label));
        }
        tx.execute("UPDATE activity_types SET current_version = $2 WHERE name = $1", &[&name, label]).await?;
    }
    if let Some(label) = &c.remove_version {
        remove(tx, name, label).await?;
    }
    if let Some(settings) = &c.settings {
        let settings = serde_json::to_string(settings)?;
        tx.execute("UPDATE activity_types SET settings = $2 WHERE name = $1", &[&name, &settings]).await?;
    }
    tx.execute("UPDATE activity_types SET updated_at = $2 WHERE name = $1", &[&name, &now]).await?;
    read(tx, Some(name)).await?.pop().ok_or_else(|| StoreError::Backend(format!("type {name} vanished")))
}

async fn remove(tx: &impl GenericClient, name: &str, label: &str) -> Result<(), StoreError> {
    let current: Option<String> =
        tx.query_one("SELECT current_version FROM activity_types WHERE name = $1", &[&name]).await?.get(0);
    if current.as_deref() == Some(label) {
        return Err(refusals::current(name, label));
    }
    let users: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM executions WHERE activity_type = $1 AND closed_at IS NULL
               AND ((options::jsonb->>'pinned_version') = $2 OR (state::jsonb->>'version') = $2)",
            &[&name, &label],
        )
        .await?
        .get(0);
    if users > 0 {
        return Err(refusals::in_use(name, label, users));
    }
    let removed =
        tx.execute("DELETE FROM type_versions WHERE activity_type = $1 AND label = $2", &[&name, &label]).await?;
    if removed == 0 {
        return Err(refusals::no_version(name, label));
    }
    Ok(())
}
