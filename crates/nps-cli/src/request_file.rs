//! `nps session create --from-json`: the file's properties are matched to
//! `ActivitySessionRequest`'s without regard to case, as the server (and
//! ASP.NET before it) binds them, so a body written for NPS
//! (`"ActivityName"`) means what it means there. Unlike the server, a
//! property the request does not have is refused: the server would ignore
//! it, and a misspelt `activityName` would then create a session for no
//! activity, running whatever that grants.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use nps_client::types::ActivitySessionRequest;

/// The request `text` describes, or what is wrong with it (one line).
pub fn parse(text: &str) -> Result<ActivitySessionRequest, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(given) = value else {
        return Err("not a JSON object: it must hold the request's properties".into());
    };
    let names = property_names::<ActivitySessionRequest>();
    let mut request = Map::new();
    let mut unknown = Vec::new();
    for (key, value) in given {
        let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(&key)) else {
            unknown.push(key);
            continue;
        };
        // Each property alone first, so that a wrong value is named.
        let alone = Map::from_iter([(name.to_string(), value.clone())]);
        if let Err(e) = serde_json::from_value::<ActivitySessionRequest>(Value::Object(alone)) {
            return Err(format!("`{key}`: {e}"));
        }
        if request.insert(name.to_string(), value).is_some() {
            return Err(format!(
                "`{name}` is given twice (property names are matched without regard to case)"
            ));
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "ActivitySessionRequest has no {} {} (it has: {})",
            if unknown.len() == 1 {
                "property"
            } else {
                "properties"
            },
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            names.join(", ")
        ));
    }
    serde_json::from_value(Value::Object(request)).map_err(|e| e.to_string())
}

/// The property names of `T` as serde knows them: its derived
/// `Deserialize` hands them to `deserialize_struct`, which this deserializer
/// records before it gives up.
fn property_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Names<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Names<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the names were wanted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Names(&mut names));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_matched_without_regard_to_case() {
        let request = parse(
            r#"{"ActivityName": "Patch web01", "NOTE": "n", "managedresourcename": "web01"}"#,
        )
        .unwrap();
        assert_eq!(request.activity_name.as_deref(), Some("Patch web01"));
        assert_eq!(request.note.as_deref(), Some("n"));
        assert_eq!(request.managed_resource_name.as_deref(), Some("web01"));
    }

    #[test]
    fn a_property_the_request_does_not_have_is_refused_and_the_known_ones_listed() {
        let error = parse(r#"{"activityNmae": "Patch web01", "note": "n"}"#).unwrap_err();
        assert!(
            error.starts_with("ActivitySessionRequest has no property `activityNmae` (it has: "),
            "{error}"
        );
        assert!(error.contains("activityName"), "{error}");
    }

    #[test]
    fn a_wrong_value_names_its_property() {
        let error = parse(r#"{"activityId": [1]}"#).unwrap_err();
        assert!(error.starts_with("`activityId`: "), "{error}");
    }

    #[test]
    fn the_same_property_in_two_cases_is_refused() {
        let error = parse(r#"{"note": "a", "Note": "b"}"#).unwrap_err();
        assert!(error.contains("`note` is given twice"), "{error}");
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        assert!(parse("[1]").unwrap_err().starts_with("not a JSON object"));
        assert!(parse("{").unwrap_err().starts_with("not JSON"));
    }
}
