//! The two databases the store runs on, behind one connection type.
//!
//! SQLite and PostgreSQL take the same SQL for nearly everything the store
//! does: `$n` parameters, `RETURNING`, `ON CONFLICT`, and columns whose
//! types both drivers map to the same Rust types (text, 64-bit integers,
//! doubles, bytes). A function that runs such SQL takes a [`Conn`] and
//! writes its body once, in [`both!`], which compiles it for each driver.
//! Where the dialects differ the function matches on the variant itself.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use super::Result;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one server.
    Sqlite,
    /// Shared by any number of servers.
    Postgres,
}

impl Backend {
    /// The backend a `DATABASE_URL` names.
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// `sqlite` or `postgres`, for the health report.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A connection (or an open transaction on one) of either database.
pub enum Conn<'a> {
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
    /// PostgreSQL.
    Postgres(&'a mut PgConnection),
}

/// Runs `$body` with `$c` bound to the `&mut` connection of `$conn` (a
/// `&mut Conn`), compiled once per driver.
macro_rules! both {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::db::Conn::Sqlite($c) => {
                let $c: &mut sqlx::SqliteConnection = &mut **$c;
                $body
            }
            $crate::store::db::Conn::Postgres($c) => {
                let $c: &mut sqlx::PgConnection = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use both;

/// A pool of read connections of either database.
#[derive(Clone)]
pub enum Pool {
    /// SQLite, opened read-only.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// A connection taken from a [`Pool`].
pub enum Pooled {
    /// SQLite.
    Sqlite(PoolConnection<Sqlite>),
    /// PostgreSQL.
    Postgres(PoolConnection<Postgres>),
}

impl Pool {
    /// Takes a connection, waiting for one when all are busy.
    pub async fn acquire(&self) -> Result<Pooled> {
        Ok(match self {
            Pool::Sqlite(pool) => Pooled::Sqlite(pool.acquire().await?),
            Pool::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

impl Pooled {
    /// The connection, for the store's SQL functions.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(conn) => Conn::Sqlite(conn),
            Pooled::Postgres(conn) => Conn::Postgres(conn),
        }
    }
}

/// [`both!`] on a connection taken from the store's read pool.
macro_rules! read {
    ($store:expr, $c:ident => $body:expr) => {{
        let mut pooled = $store.read.acquire().await?;
        $crate::store::db::both!(&mut pooled.conn(), $c => $body)
    }};
}
pub(crate) use read;
