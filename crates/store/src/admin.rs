//! Creating and dropping PostgreSQL databases, for test runs and
//! benchmarks that each want a throwaway database.

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::error::StoreError;

/// Whether `name` is safe to splice into `CREATE DATABASE` (we choose the
/// names, but check anyway: identifiers cannot be bound parameters).
fn check_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "invalid database name {name:?}"
        )))
    }
}

/// Replaces the database name in a `postgres://` URL.
pub fn with_database(url: &str, name: &str) -> Result<String, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base
        .find("://")
        .ok_or_else(|| StoreError::Config("not a URL".into()))?
        + 3;
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// Creates database `name` on the server `admin_url` points to.
pub fn create_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    check_name(name)?;
    let mut conn =
        PgConnection::establish(admin_url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut conn)?;
    Ok(())
}

/// Drops database `name`, closing whatever connections are still open.
pub fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    check_name(name)?;
    let mut conn =
        PgConnection::establish(admin_url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced_keeping_the_query() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "t_1").unwrap(),
            "postgres://u@h:5432/t_1"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "t_1").unwrap(),
            "postgres://u@h/t_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h", "t_1").unwrap(),
            "postgres://h/t_1"
        );
        assert!(check_name("Robert'); DROP").is_err());
    }
}
