//! Who may call each operation: the one declaration of auth policies.
//!
//! Dropshot does not know about security, so this table is the single source:
//! `cargo xtask generate` writes it into `openapi.json` (`security`, the 401 and
//! 403 answers, the "(Auth policies: ...)" suffix of each summary), and
//! `nps-server` enforces it by looking up the operationId of each request here.
//! An operation missing from this table fails `cargo xtask check` and stops the
//! server at start-up.

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "User",
            Role::Admin => "Admin",
        }
    }

    /// Parses `user` or `admin`, without regard to case.
    pub fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What a request must carry to reach an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthPolicy {
    /// Nothing: sign-in itself, and the unpublished ping.
    Anonymous,
    /// The pre-MFA token that `/signinBody` answers (Bearer or cookie).
    PreMfaToken,
    /// An MFA token (policy `MfaRequired`), and the role when one is named.
    MfaRequired { role: Option<Role> },
}

impl AuthPolicy {
    /// Whether the document marks the operation with the bearer scheme.
    pub fn needs_bearer(self) -> bool {
        matches!(self, AuthPolicy::MfaRequired { .. })
    }

    /// The reference pages' summary suffix, e.g. `(Auth policies: MfaRequired)`.
    pub fn summary_suffix(self) -> Option<String> {
        match self {
            AuthPolicy::Anonymous | AuthPolicy::PreMfaToken => None,
            AuthPolicy::MfaRequired { role: None } => {
                Some("(Auth policies: MfaRequired)".to_string())
            }
            // NPS lists the policy once per attribute and then the roles.
            AuthPolicy::MfaRequired { role: Some(role) } => Some(format!(
                "(Auth policies: MfaRequired, MfaRequired; roles: {})",
                role.as_str()
            )),
        }
    }
}

/// An operation and its policy.
#[derive(Clone, Copy, Debug)]
pub struct OperationPolicy {
    pub operation_id: &'static str,
    pub policy: AuthPolicy,
}

const MFA: AuthPolicy = AuthPolicy::MfaRequired { role: None };
const MFA_ADMIN: AuthPolicy = AuthPolicy::MfaRequired {
    role: Some(Role::Admin),
};

/// Every operation of [`crate::NpsApi`], published or not.
pub const OPERATION_POLICIES: &[OperationPolicy] = &[
    OperationPolicy {
        operation_id: "SignInBody",
        policy: AuthPolicy::Anonymous,
    },
    OperationPolicy {
        operation_id: "SignIn2fa",
        policy: AuthPolicy::PreMfaToken,
    },
    OperationPolicy {
        operation_id: "CreateAsync",
        policy: MFA,
    },
    OperationPolicy {
        operation_id: "GetAllActivitySessionsByStatusAsync",
        policy: MFA_ADMIN,
    },
    OperationPolicy {
        operation_id: "GetByIdAsync",
        policy: MFA,
    },
    OperationPolicy {
        operation_id: "DeleteAsync",
        policy: MFA,
    },
    OperationPolicy {
        operation_id: "ExtendAsync",
        policy: MFA,
    },
    OperationPolicy {
        operation_id: "GetSessionLogsAsync",
        policy: MFA,
    },
    OperationPolicy {
        operation_id: "Ping",
        policy: AuthPolicy::Anonymous,
    },
];

/// The policy of an operation, or `None` when the table lacks it (a bug that
/// `cargo xtask check` and server start-up both report).
pub fn policy_for(operation_id: &str) -> Option<AuthPolicy> {
    OPERATION_POLICIES
        .iter()
        .find(|p| p.operation_id == operation_id)
        .map(|p| p.policy)
}
