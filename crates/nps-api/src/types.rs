//! Request and response types of the NPS ActivitySession API.
//!
//! Property names are camelCase and enum values are the strings NPS sends,
//! exactly as in the reference pages (`shared/reference/nps-api-4.2/Models`), so
//! that a client written for NPS works unchanged. Properties this server adds
//! beyond the reference say so in their doc comment ("Extension:").

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// A deserializer whose structs match their field names without regard to
/// case, as ASP.NET binds JSON bodies and query strings: each key is handed
/// to the derived code in the spelling the struct declares when it differs
/// only in case (`StartDateTimeUtc`, `startdatetimeutc` → `startDateTimeUtc`).
/// Keys that match no field pass as they are (and are ignored, as ASP.NET
/// does); two spellings of one field are a duplicate field.
pub(crate) struct IgnoreCase<D>(pub D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for IgnoreCase<D> {
    type Error = D::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_struct(name, fields, StructVisitor { visitor, fields })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Hands a struct's derived visitor its map with keys in the struct's spelling.
struct StructVisitor<V> {
    visitor: V,
    fields: &'static [&'static str],
}

impl<'de, V: serde::de::Visitor<'de>> serde::de::Visitor<'de> for StructVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(CanonicalKeys {
            map,
            fields: self.fields,
        })
    }
}

struct CanonicalKeys<A> {
    map: A,
    fields: &'static [&'static str],
}

impl<'de, A: serde::de::MapAccess<'de>> serde::de::MapAccess<'de> for CanonicalKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        use serde::de::IntoDeserializer;
        let Some(key) = self.map.next_key::<String>()? else {
            return Ok(None);
        };
        let key = match self.fields.iter().find(|f| f.eq_ignore_ascii_case(&key)) {
            Some(field) => (*field).to_string(),
            None => key,
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// Makes a struct readable only from a JSON object, its property names
/// matched without regard to case. Serde's derived `Deserialize` also reads a
/// struct from an array of its fields in order (`[null, "x"]`), which no NPS
/// client sends and the document does not allow; and it matches names
/// exactly, so `{"StartDateTimeUtc": ...}`, which NPS (ASP.NET, whose JSON
/// binding ignores case) reads as the start, was an unknown property here,
/// ignored: a session asked for in two hours started at once. The struct
/// derives with `#[serde(remote = "Self")]`, which turns the derived impls
/// into inherent functions; the trait impls written here call them, the
/// `Deserialize` one only after checking that the input is a map, and through
/// [`IgnoreCase`]. Errors keep their path (`customFields[0].name: ...`).
macro_rules! objects_only {
    ($ty:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($ty), ")"))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<$ty, A::Error> {
                        $ty::deserialize(IgnoreCase(serde::de::value::MapAccessDeserializer::new(
                            map,
                        )))
                    }
                }
                deserializer.deserialize_map(ObjectVisitor)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, serializer)
            }
        }
    };
}

/// The state of an activity session (`SbPAM.Constants.ActionConstants+SessionStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SessionStatus {
    Pending,
    Active,
    Cancelling,
    Complete,
    Failed,
    Cancelled,
    ApprovalDenied,
    ApprovalFailed,
    ApprovalRequired,
}

impl SessionStatus {
    /// Every status, in the order of the reference page.
    pub const ALL: [SessionStatus; 9] = [
        SessionStatus::Pending,
        SessionStatus::Active,
        SessionStatus::Cancelling,
        SessionStatus::Complete,
        SessionStatus::Failed,
        SessionStatus::Cancelled,
        SessionStatus::ApprovalDenied,
        SessionStatus::ApprovalFailed,
        SessionStatus::ApprovalRequired,
    ];

    /// The name NPS sends on the wire, e.g. `"Cancelling"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "Pending",
            SessionStatus::Active => "Active",
            SessionStatus::Cancelling => "Cancelling",
            SessionStatus::Complete => "Complete",
            SessionStatus::Failed => "Failed",
            SessionStatus::Cancelled => "Cancelled",
            SessionStatus::ApprovalDenied => "ApprovalDenied",
            SessionStatus::ApprovalFailed => "ApprovalFailed",
            SessionStatus::ApprovalRequired => "ApprovalRequired",
        }
    }

    /// Parses the wire name back (exact match).
    pub fn from_name(name: &str) -> Option<SessionStatus> {
        SessionStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// A terminal status never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionStatus::Complete
                | SessionStatus::Failed
                | SessionStatus::Cancelled
                | SessionStatus::ApprovalDenied
                | SessionStatus::ApprovalFailed
        )
    }
}

impl std::fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of a session log line (`SbPAM.Constants.ActionConstants+ActionLogType`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ActionLogType {
    Debug,
    Info,
    Warn,
    Error,
}

impl ActionLogType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionLogType::Debug => "Debug",
            ActionLogType::Info => "Info",
            ActionLogType::Warn => "Warn",
            ActionLogType::Error => "Error",
        }
    }

    pub fn from_name(name: &str) -> Option<ActionLogType> {
        [
            ActionLogType::Debug,
            ActionLogType::Info,
            ActionLogType::Warn,
            ActionLogType::Error,
        ]
        .into_iter()
        .find(|l| l.as_str() == name)
    }
}

/// An activity session (`SbPAM.Models.ActivitySession`): the properties of the
/// reference model that this server fills; the nested related models
/// (activity, managed account, action queues, ...) are not part of this API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivitySession {
    pub id: Uuid,
    pub created_by: Option<Uuid>,
    pub created_by_user_name: Option<String>,
    pub created_from_address: Option<String>,
    pub created_date_time_utc: DateTime<Utc>,
    pub credential_id: Option<Uuid>,
    pub locked: bool,
    pub login_account_name: Option<String>,
    pub activity_id: Uuid,
    pub activity_session_group_id: Option<Uuid>,
    pub access_control_policy_id: Option<Uuid>,
    pub managed_account_id: Option<Uuid>,
    pub managed_resource_id: Option<Uuid>,
    pub status: SessionStatus,
    pub status_description: Option<String>,
    pub scheduled_start_date_time_utc: DateTime<Utc>,
    pub actual_start_date_time_utc: Option<DateTime<Utc>>,
    pub scheduled_end_date_time_utc: Option<DateTime<Utc>>,
    pub actual_end_date_time_utc: Option<DateTime<Utc>>,
    pub cancelled_by: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub note: Option<String>,
    pub ticket: Option<String>,
    pub node_id: Uuid,
    pub modified_date_time_utc: DateTime<Utc>,
    pub allow_session_extension: bool,
    pub session_extension_count: i32,
    pub session_extension_minutes: i32,
    /// The request's custom fields, as a JSON array in a string (as NPS sends them).
    pub custom_fields: Option<String>,
    /// Extension: the activity name given at creation (NPS nests it in `activity`).
    pub activity_name: Option<String>,
    /// Extension: the resource name given at creation (NPS nests it in `managedResource`).
    pub managed_resource_name: Option<String>,
}

/// The data type of a custom field (`SbPAM.Models.CustomFieldDataType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CustomFieldDataType {
    Integer,
    String,
    Boolean,
    DateTime,
}

/// A custom field of a session request (`SbPAM.Models.CustomFieldDto`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct CustomFieldDto {
    #[serde(default)]
    pub policy_id: Option<Uuid>,
    #[serde(default)]
    pub custom_field_data_type: Option<CustomFieldDataType>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

objects_only!(CustomFieldDto);

/// What CreateAsync takes (`SbPAM.Models.ActivitySessionRequest`). Every
/// property is optional. `createdBy`, `createdByUserName` and
/// `createdFromAddress` are accepted for compatibility and ignored: the server
/// records the signed-in caller and the peer address instead.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct ActivitySessionRequest {
    #[serde(default)]
    pub created_by: Option<Uuid>,
    #[serde(default)]
    pub created_by_user_name: Option<String>,
    #[serde(default)]
    pub created_from_address: Option<String>,
    #[serde(default)]
    pub activity_session_group_id: Option<Uuid>,
    #[serde(default)]
    pub managed_account_id: Option<Uuid>,
    #[serde(default)]
    pub managed_resource_id: Option<Uuid>,
    #[serde(default)]
    pub managed_resource_name: Option<String>,
    #[serde(default)]
    pub activity_id: Option<Uuid>,
    #[serde(default)]
    pub access_policy_id: Option<Uuid>,
    #[serde(default)]
    pub credential_id: Option<Uuid>,
    #[serde(default)]
    pub credential_domain: Option<String>,
    #[serde(default)]
    pub credential_username: Option<String>,
    #[serde(default)]
    pub credential_name: Option<String>,
    /// When the session starts; empty means now.
    #[serde(default)]
    pub start_date_time_utc: Option<DateTime<Utc>>,
    /// When the session ends; empty means start plus the server's maximum length.
    #[serde(default)]
    pub end_date_time_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub activity_name: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub ticket: Option<String>,
    #[serde(default)]
    pub custom_fields: Option<Vec<CustomFieldDto>>,
}

objects_only!(ActivitySessionRequest);

/// One line of a session's log (`SbPAM.Models.ActionLogDto`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionLogDto {
    pub status_string: Option<String>,
    pub status: ActionLogType,
    pub log_message: Option<String>,
    pub line_number: i32,
    pub timestamp: DateTime<Utc>,
    pub version: Option<String>,
}

/// A page of a session's log (`SbPAM.Models.ActionLogCollection`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionLogCollection {
    pub lines: Vec<ActionLogDto>,
    /// How many lines match the filters, before `skip` and `take`.
    pub total_count: i32,
    pub version: Option<String>,
}

/// The sign-in body: `{"Login": "...", "Password": "..."}`. Property names are
/// matched without regard to case, as ASP.NET does.
#[derive(Clone, Serialize, JsonSchema)]
pub struct SignInBody {
    #[serde(rename = "Login")]
    pub login: String,
    #[serde(rename = "Password")]
    pub password: String,
}

impl std::fmt::Debug for SignInBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInBody")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl<'de> Deserialize<'de> for SignInBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut login = None;
        let mut password = None;
        for (key, value) in map {
            let slot = match key.to_ascii_lowercase().as_str() {
                "login" => &mut login,
                "password" => &mut password,
                // Unknown properties are ignored, as ASP.NET does.
                _ => continue,
            };
            match value {
                serde_json::Value::String(s) => *slot = Some(s),
                _ => return Err(D::Error::custom(format!("property {key} must be a string"))),
            }
        }
        Ok(SignInBody {
            login: login.ok_or_else(|| D::Error::missing_field("Login"))?,
            password: password.ok_or_else(|| D::Error::missing_field("Password"))?,
        })
    }
}

/// The MFA code sent to `/signin2fa`: a bare JSON number (`123456`, as the
/// PowerShell samples send it) or a JSON string (`"123456"`). A number is the
/// six digits without their leading zeros, so it is at most 999999; six
/// bare digits with leading zeros (`012345`, which PowerShell sends as typed
/// though it is not JSON) are read as the code too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MfaCode {
    Number(#[schemars(range(max = 999_999))] u32),
    Text(String),
}

impl<'de> Deserialize<'de> for MfaCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CodeVisitor;
        const TOO_BIG: &str = "a code sent as a number has at most six digits (0 to 999999)";
        impl serde::de::Visitor<'_> for CodeVisitor {
            type Value = MfaCode;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the six-digit code, as a number or a string")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<MfaCode, E> {
                match u32::try_from(n) {
                    Ok(n) if n <= 999_999 => Ok(MfaCode::Number(n)),
                    _ => Err(E::custom(TOO_BIG)),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<MfaCode, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(TOO_BIG)),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<MfaCode, E> {
                // JSON Schema counts 123456.0 as an integer.
                // Not -0 or -0.0: a code has no sign.
                if n.fract() == 0.0 && n.is_sign_positive() && n <= 999_999.0 {
                    Ok(MfaCode::Number(n as u32))
                } else {
                    Err(E::custom(TOO_BIG))
                }
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<MfaCode, E> {
                Ok(MfaCode::Text(s.to_string()))
            }
        }
        deserializer.deserialize_any(CodeVisitor)
    }
}

impl crate::extract::FromJsonBody for ActivitySessionRequest {}
impl crate::extract::FromJsonBody for SignInBody {}

impl crate::extract::FromJsonBody for MfaCode {
    fn from_json_body(body: &[u8]) -> Result<Self, String> {
        let bare = body.trim_ascii();
        if bare.len() == 6 && bare.starts_with(b"0") && bare.iter().all(u8::is_ascii_digit) {
            // Checked above: six ASCII digits.
            return Ok(MfaCode::Text(String::from_utf8_lossy(bare).into_owned()));
        }
        crate::extract::parse_json(body)
    }
}

impl MfaCode {
    /// The code as the six digits an authenticator shows. A number loses its
    /// leading zeros in JSON, so they are put back.
    pub fn digits(&self) -> String {
        match self {
            MfaCode::Number(n) => format!("{n:06}"),
            MfaCode::Text(s) => s.trim().to_string(),
        }
    }
}

/// Which sessions GetAllActivitySessionsByStatusAsync lists.
// Read without regard to case (`Active`, as ASP.NET binds it, is `active`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", remote = "Self")]
pub enum SessionCategory {
    /// Pending or ApprovalRequired: not started yet.
    Pending,
    /// Active or Cancelling: access is (still) granted.
    Active,
    /// Complete, Failed, Cancelled, ApprovalDenied or ApprovalFailed.
    Historical,
}

impl<'de> Deserialize<'de> for SessionCategory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::IntoDeserializer;
        let name = String::deserialize(deserializer)?.to_ascii_lowercase();
        SessionCategory::deserialize(name.into_deserializer())
    }
}

impl Serialize for SessionCategory {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SessionCategory::serialize(self, serializer)
    }
}

impl SessionCategory {
    /// The statuses this category covers.
    pub fn statuses(self) -> &'static [SessionStatus] {
        match self {
            SessionCategory::Pending => &[SessionStatus::Pending, SessionStatus::ApprovalRequired],
            SessionCategory::Active => &[SessionStatus::Active, SessionStatus::Cancelling],
            SessionCategory::Historical => &[
                SessionStatus::Complete,
                SessionStatus::Failed,
                SessionStatus::Cancelled,
                SessionStatus::ApprovalDenied,
                SessionStatus::ApprovalFailed,
            ],
        }
    }
}

/// The largest page a listing answers; `take` above it is a 400.
pub const MAX_TAKE: i32 = 1000;

/// The path of every operation on one session.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionIdPath {
    /// The session's id.
    pub session_id: Uuid,
}

/// Query of GetAllActivitySessionsByStatusAsync.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListSessionsQuery {
    /// `pending`, `active` or `historical`; absent lists every session.
    pub status: Option<SessionCategory>,
    /// Filter by host id.
    pub target_id: Option<Uuid>,
    /// Filter by host user id.
    pub target_user_id: Option<Uuid>,
    /// Extension: how many sessions to skip (newest first). Default 0.
    #[schemars(range(min = 0))]
    pub skip: Option<i32>,
    /// Extension: how many sessions to answer at most. Default 100, at most 1000.
    #[schemars(range(min = 0, max = 1000))]
    pub take: Option<i32>,
}

/// Query of GetSessionLogsAsync.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionLogQuery {
    /// Only lines of this level.
    pub log_level: Option<ActionLogType>,
    /// How many records to skip. Default 0.
    #[schemars(range(min = 0))]
    pub skip: Option<i32>,
    /// How many records to answer. Default 100, at most 1000.
    #[schemars(range(min = 0, max = 1000))]
    pub take: Option<i32>,
    /// Newest first when true; default oldest first.
    pub order_descending: Option<bool>,
    /// Only lines whose message contains this text (a plain substring, no wildcards).
    pub filter_text: Option<String>,
    /// Only lines at or after this time.
    pub start_date: Option<DateTime<Utc>>,
    /// Only lines at or before this time.
    pub end_date: Option<DateTime<Utc>>,
}

/// The `Location` header of 201 and 202 answers: the session's URL.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct LocationHeader {
    /// Path of the session, e.g. `/api/v1/ActivitySession/{sessionId}`.
    pub location: String,
}

/// The `Set-Cookie` header of `/signinBody`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SetCookieHeader {
    /// `NpsSignIn=<pre-MFA token>`: lets a client that keeps cookies call `/signin2fa`
    /// without repeating the token in `Authorization`.
    #[serde(rename = "set-cookie")]
    pub set_cookie: String,
}

/// The path of one session, as `Location` headers carry it.
pub fn session_location(id: Uuid) -> String {
    format!("/api/v1/ActivitySession/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_request_matches_property_names_without_case() {
        let pascal: ActivitySessionRequest = serde_json::from_str(
            r#"{"ActivityName":"a","StartDateTimeUtc":"2030-01-01T02:00:00Z",
                "enddatetimeutc":"2030-01-01T03:00:00Z","NOTE":"n","Unknown":1,
                "CustomFields":[{"Name":"f","VALUE":"v"}]}"#,
        )
        .unwrap();
        let camel: ActivitySessionRequest = serde_json::from_str(
            r#"{"activityName":"a","startDateTimeUtc":"2030-01-01T02:00:00Z",
                "endDateTimeUtc":"2030-01-01T03:00:00Z","note":"n",
                "customFields":[{"name":"f","value":"v"}]}"#,
        )
        .unwrap();
        assert_eq!(pascal, camel);
        assert!(pascal.start_date_time_utc.is_some());
        // Two spellings of one property are one property given twice.
        let twice = serde_json::from_str::<ActivitySessionRequest>(r#"{"note":"a","Note":"b"}"#);
        assert!(twice
            .unwrap_err()
            .to_string()
            .contains("duplicate field `note`"));
        // Still objects only, and written in the document's spelling.
        assert!(serde_json::from_str::<ActivitySessionRequest>("[null]").is_err());
        assert!(serde_json::to_string(&pascal)
            .unwrap()
            .contains("\"startDateTimeUtc\""));
    }

    #[test]
    fn sign_in_body_matches_property_names_without_case() {
        let body: SignInBody =
            serde_json::from_str(r#"{"login":"a","PASSWORD":"b","extra":1}"#).unwrap();
        assert_eq!((body.login.as_str(), body.password.as_str()), ("a", "b"));
        assert!(serde_json::from_str::<SignInBody>(r#"{"Login":"a"}"#).is_err());
        assert!(serde_json::from_str::<SignInBody>(r#"{"Login":1,"Password":"b"}"#).is_err());
    }

    #[test]
    fn mfa_code_accepts_numbers_and_strings() {
        let n: MfaCode = serde_json::from_str("12345").unwrap();
        assert_eq!(n.digits(), "012345");
        let s: MfaCode = serde_json::from_str(r#""654321""#).unwrap();
        assert_eq!(s.digits(), "654321");
        let f: MfaCode = serde_json::from_str("123456.0").unwrap();
        assert_eq!(f.digits(), "123456");
        for bad in [
            "1000000",
            "91766100026",
            "-1",
            "-0",
            "-0.0",
            "1.5",
            "null",
            "[1]",
        ] {
            assert!(serde_json::from_str::<MfaCode>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bare_code_with_leading_zeros_is_read_as_typed() {
        use crate::extract::FromJsonBody;
        // PowerShell's `-Body $MfaCode` sends the code as typed.
        let bare = MfaCode::from_json_body(b" 012345\r\n").unwrap();
        assert_eq!(bare.digits(), "012345");
        assert_eq!(
            MfaCode::from_json_body(b"123456").unwrap().digits(),
            "123456"
        );
        assert_eq!(
            MfaCode::from_json_body(b"\"000001\"").unwrap().digits(),
            "000001"
        );
        // Anything else with a leading zero is still not JSON.
        for bad in ["0123", "0123456", "01234x", "012345 6"] {
            assert!(MfaCode::from_json_body(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_are_objects_not_arrays() {
        assert!(serde_json::from_str::<ActivitySessionRequest>("[null, null]").is_err());
        let ok: ActivitySessionRequest =
            serde_json::from_str(r#"{"note": "n", "customFields": [{"name": "a"}], "x": 1}"#)
                .unwrap();
        assert_eq!(ok.note.as_deref(), Some("n"));
        let nested = r#"{"customFields": [[null, null, "a", "b"]]}"#;
        assert!(serde_json::from_str::<ActivitySessionRequest>(nested).is_err());
        // Serialize still writes the camelCase object.
        let text = serde_json::to_string(&ok).unwrap();
        assert!(text.contains(r#""customFields":[{"#), "{text}");
    }

    #[test]
    fn status_names_round_trip() {
        for status in SessionStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(SessionStatus::from_name(status.as_str()), Some(status));
        }
    }
}
