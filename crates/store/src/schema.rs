//! Diesel table definitions, the same for both backends.

diesel::table! {
    organizations (id) {
        id -> Text,
        slug -> Text,
        name -> Text,
        locale -> Text,
        created_at -> Timestamp,
    }
}
