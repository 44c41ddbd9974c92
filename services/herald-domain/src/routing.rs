//! Routing rules (docs/DESIGN.md, "Routing rules"): a tenant's ordered rules, each a set of
//! conditions on a notification's `data` that, when all hold, choose the channels its deliveries
//! go to (among those it names) and, optionally, the template they render.
//!
//! Written as [`RuleSet`] (the API's JSON), checked once by [`RuleSet::compile`] into
//! [`CompiledRuleSet`], whose [`CompiledRuleSet::decide`] the worker calls per notification:
//! field paths are split and literals typed at compile time, so a condition is a few map lookups
//! and one comparison (the `routing` bench: well under a microsecond per rule).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::validation::{template_id_problem, FieldError};
use crate::Channel;

/// Versions one tenant may write: each `PUT` is one, and notifications keep theirs.
pub const MAX_RULE_SET_VERSIONS: i32 = 10_000;
/// Rules one tenant may have.
pub const MAX_RULES: usize = 50;
/// Conditions one rule may have.
pub const MAX_CONDITIONS: usize = 10;
/// A rule's name, in characters.
pub const MAX_RULE_NAME_CHARS: usize = 64;
/// A field path, in characters, and its segments.
pub const MAX_FIELD_CHARS: usize = 256;
pub const MAX_FIELD_SEGMENTS: usize = 8;
/// Values one `in` or `not_in` condition may list.
pub const MAX_LISTED_VALUES: usize = 100;
/// A literal string's length, in characters.
pub const MAX_LITERAL_CHARS: usize = 256;

/// A tenant's rules, tried in order: the first whose conditions all hold decides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    #[schema(max_items = 50)]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique within the set; named in the reason of a delivery the rule skips.
    #[schema(example = "page-on-critical", min_length = 1, max_length = 64)]
    pub name: String,
    /// Every condition must hold (none: the rule always matches).
    #[serde(default)]
    #[schema(max_items = 10)]
    pub when: Vec<Condition>,
    /// The channels a matching notification's deliveries go to: its deliveries on its other
    /// channels are `skipped`, the rule named. A rule cannot add a channel the notification does
    /// not name.
    #[schema(min_items = 1)]
    pub channels: Vec<Channel>,
    /// The template a matching notification's deliveries render instead of its own content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// The template's version; when absent, the latest when the rules are written (the API
    /// fills it in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<i32>,
}

/// One test of a `data` field: `{"field": "severity", "op": "eq", "value": "critical"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A dotted path into `data` (`host.cpu`); a missing field fails every test but `exists`.
    #[schema(example = "severity", min_length = 1, max_length = 256)]
    pub field: String,
    pub op: Operator,
    /// `eq`, `ne`: any JSON scalar; `gt`, `gte`, `lt`, `lte`: a number; `in`, `not_in`: a list
    /// of scalars; `between`: `[low, high]`, numbers, both inclusive; `exists`: `true` or `false`.
    #[schema(value_type = Object)]
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Between,
    Exists,
}

/// What the first matching rule chose for a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub rule: String,
    pub channels: Vec<Channel>,
    /// `(template_id, version)`.
    pub template: Option<(String, i32)>,
}

impl Decision {
    /// Why a delivery on `channel` is not sent, if the rule does not route to it.
    pub fn skip_reason(&self, channel: Channel) -> Option<String> {
        (!self.channels.contains(&channel)).then(|| {
            format!(
                "the routing rule `{}` does not route to {}",
                self.rule,
                channel.as_str()
            )
        })
    }
}

/// A rule set checked and prepared for evaluation.
#[derive(Debug, Clone)]
pub struct CompiledRuleSet {
    rules: Vec<CompiledRule>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    decision: Decision,
    conditions: Vec<CompiledCondition>,
}

#[derive(Debug, Clone)]
struct CompiledCondition {
    path: Vec<Box<str>>,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Equal(Scalar),
    NotEqual(Scalar),
    Greater(f64),
    GreaterOrEqual(f64),
    Less(f64),
    LessOrEqual(f64),
    In(ScalarSet),
    NotIn(ScalarSet),
    Between(f64, f64),
    Exists(bool),
}

/// A literal, typed once: numbers compare as numbers (`2` equals `2.0`).
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    Text(Box<str>),
}

impl Scalar {
    fn of(value: &Value) -> Option<Scalar> {
        match value {
            Value::Null => Some(Scalar::Null),
            Value::Bool(flag) => Some(Scalar::Bool(*flag)),
            Value::Number(number) => number.as_f64().map(Scalar::Number),
            Value::String(text) => Some(Scalar::Text(text.as_str().into())),
            Value::Array(_) | Value::Object(_) => None,
        }
    }

    fn matches(&self, value: &Value) -> bool {
        match (self, value) {
            (Scalar::Null, Value::Null) => true,
            (Scalar::Bool(expected), Value::Bool(actual)) => expected == actual,
            (Scalar::Number(expected), Value::Number(actual)) => actual.as_f64() == Some(*expected),
            (Scalar::Text(expected), Value::String(actual)) => **expected == **actual,
            _ => false,
        }
    }
}

/// The literals of an `in` list, sorted by type: a lookup is a binary search, so a hostile
/// tenant's lists of 100 values cost what lists of 7 would.
#[derive(Debug, Clone, Default)]
struct ScalarSet {
    texts: Vec<Box<str>>,
    numbers: Vec<f64>,
    booleans: [bool; 2],
    null: bool,
}

impl ScalarSet {
    fn of(scalars: Vec<Scalar>) -> ScalarSet {
        let mut set = ScalarSet::default();
        for scalar in scalars {
            match scalar {
                Scalar::Null => set.null = true,
                Scalar::Bool(flag) => set.booleans[usize::from(flag)] = true,
                // `+ 0.0` makes -0 into 0, which `eq` already treats as equal.
                Scalar::Number(number) => set.numbers.push(number + 0.0),
                Scalar::Text(text) => set.texts.push(text),
            }
        }
        set.texts.sort_unstable();
        // JSON has no NaN: every number has its place.
        set.numbers.sort_unstable_by(f64::total_cmp);
        set
    }

    fn contains(&self, value: &Value) -> bool {
        match value {
            Value::Null => self.null,
            Value::Bool(flag) => self.booleans[usize::from(*flag)],
            Value::Number(number) => number.as_f64().is_some_and(|number| {
                let number = number + 0.0;
                self.numbers
                    .binary_search_by(|listed| listed.total_cmp(&number))
                    .is_ok()
            }),
            Value::String(text) => self
                .texts
                .binary_search_by(|listed| (**listed).cmp(text.as_str()))
                .is_ok(),
            Value::Array(_) | Value::Object(_) => false,
        }
    }
}

impl Test {
    fn holds(&self, value: Option<&Value>) -> bool {
        let number = || value.and_then(Value::as_f64);
        match self {
            Test::Exists(expected) => value.is_some() == *expected,
            Test::Equal(scalar) => value.is_some_and(|value| scalar.matches(value)),
            // A missing field is not equal to anything, and fails `ne` too: a rule about a field
            // says nothing of a notification without it.
            Test::NotEqual(scalar) => value.is_some_and(|value| !scalar.matches(value)),
            Test::Greater(bound) => number().is_some_and(|number| number > *bound),
            Test::GreaterOrEqual(bound) => number().is_some_and(|number| number >= *bound),
            Test::Less(bound) => number().is_some_and(|number| number < *bound),
            Test::LessOrEqual(bound) => number().is_some_and(|number| number <= *bound),
            Test::Between(low, high) => {
                number().is_some_and(|number| *low <= number && number <= *high)
            }
            Test::In(set) => value.is_some_and(|value| set.contains(value)),
            Test::NotIn(set) => value.is_some_and(|value| !set.contains(value)),
        }
    }
}

fn lookup<'a>(data: &'a Value, path: &[Box<str>]) -> Option<&'a Value> {
    let mut value = data;
    for segment in path {
        value = value.as_object()?.get(&**segment)?;
    }
    Some(value)
}

impl CompiledRuleSet {
    /// The first rule whose conditions all hold on `data`, if any.
    pub fn decide(&self, data: &Value) -> Option<&Decision> {
        self.rules
            .iter()
            .find(|rule| {
                rule.conditions
                    .iter()
                    .all(|condition| condition.test.holds(lookup(data, &condition.path)))
            })
            .map(|rule| &rule.decision)
    }
}

impl RuleSet {
    /// Checks every rule, each problem naming its field (`rules[1].when[0].value`); the API
    /// resolves templates (their existence and parts) itself.
    pub fn compile(&self) -> Result<CompiledRuleSet, Vec<FieldError>> {
        // Nothing more is read of a set over the bound: the names' uniqueness check is quadratic,
        // and a body of tens of thousands of rules must not cost the API seconds of CPU.
        if self.rules.len() > MAX_RULES {
            return Err(vec![FieldError::new(
                "rules",
                format!("at most {MAX_RULES} rules, got {}", self.rules.len()),
            )]);
        }
        let mut problems = Vec::new();
        let mut compiled = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let at = |field: &str| format!("rules[{index}].{field}");
            if rule.name.is_empty() || rule.name.chars().count() > MAX_RULE_NAME_CHARS {
                problems.push(FieldError::new(
                    at("name"),
                    format!("1 to {MAX_RULE_NAME_CHARS} characters"),
                ));
            } else if rule.name.chars().any(char::is_control) {
                problems.push(FieldError::new(
                    at("name"),
                    "must not contain control characters",
                ));
            } else if self.rules[..index]
                .iter()
                .any(|earlier| earlier.name == rule.name)
            {
                problems.push(FieldError::new(
                    at("name"),
                    format!("`{}` names an earlier rule", rule.name),
                ));
            }
            if rule.channels.is_empty() {
                problems.push(FieldError::new(at("channels"), "at least one channel"));
            }
            for (position, channel) in rule.channels.iter().enumerate() {
                if rule.channels[..position].contains(channel) {
                    problems.push(FieldError::new(
                        format!("rules[{index}].channels[{position}]"),
                        format!("{} is listed twice", channel.as_str()),
                    ));
                }
            }
            if let Some(problem) = rule.template_id.as_deref().and_then(template_id_problem) {
                problems.push(FieldError::new(at("template_id"), problem));
            }
            if rule.template_version.is_some() && rule.template_id.is_none() {
                problems.push(FieldError::new(
                    at("template_version"),
                    "needs a template_id",
                ));
            }
            if rule.when.len() > MAX_CONDITIONS {
                problems.push(FieldError::new(
                    at("when"),
                    format!("at most {MAX_CONDITIONS} conditions"),
                ));
            }
            let mut conditions = Vec::with_capacity(rule.when.len());
            for (position, condition) in rule.when.iter().enumerate() {
                let at = |field: &str| format!("rules[{index}].when[{position}].{field}");
                match compile_condition(condition) {
                    Ok(compiled) => conditions.push(compiled),
                    Err((field, problem)) => problems.push(FieldError::new(at(field), problem)),
                }
            }
            compiled.push(CompiledRule {
                decision: Decision {
                    rule: rule.name.clone(),
                    channels: rule.channels.clone(),
                    template: rule.template_id.clone().zip(rule.template_version),
                },
                conditions,
            });
        }
        if problems.is_empty() {
            Ok(CompiledRuleSet { rules: compiled })
        } else {
            Err(problems)
        }
    }
}

fn compile_condition(condition: &Condition) -> Result<CompiledCondition, (&'static str, String)> {
    let field = &condition.field;
    let path: Vec<Box<str>> = field.split('.').map(Box::from).collect();
    if field.is_empty()
        || field.chars().count() > MAX_FIELD_CHARS
        || path.len() > MAX_FIELD_SEGMENTS
        || path.iter().any(|segment| segment.is_empty())
    {
        return Err((
            "field",
            format!(
                "a dotted path of 1 to {MAX_FIELD_SEGMENTS} non-empty names, at most {MAX_FIELD_CHARS} characters"
            ),
        ));
    }
    let value = &condition.value;
    let scalar = || {
        let scalar = Scalar::of(value).ok_or((
            "value",
            "must be a string, number, boolean or null".to_owned(),
        ))?;
        match &scalar {
            Scalar::Text(text) if text.chars().count() > MAX_LITERAL_CHARS => {
                Err(("value", format!("at most {MAX_LITERAL_CHARS} characters")))
            }
            _ => Ok(scalar),
        }
    };
    let number = || {
        value
            .as_f64()
            .ok_or(("value", "must be a number".to_owned()))
    };
    let scalars = || {
        let Value::Array(items) = value else {
            return Err((
                "value",
                "must be a list of strings, numbers, booleans or nulls".to_owned(),
            ));
        };
        if items.is_empty() || items.len() > MAX_LISTED_VALUES {
            return Err(("value", format!("1 to {MAX_LISTED_VALUES} values")));
        }
        items
            .iter()
            .map(|item| match Scalar::of(item) {
                Some(Scalar::Text(text)) if text.chars().count() > MAX_LITERAL_CHARS => Err((
                    "value",
                    format!("each at most {MAX_LITERAL_CHARS} characters"),
                )),
                Some(scalar) => Ok(scalar),
                None => Err((
                    "value",
                    "must be a list of strings, numbers, booleans or nulls".to_owned(),
                )),
            })
            .collect()
    };
    let test = match condition.op {
        Operator::Eq => Test::Equal(scalar()?),
        Operator::Ne => Test::NotEqual(scalar()?),
        Operator::Gt => Test::Greater(number()?),
        Operator::Gte => Test::GreaterOrEqual(number()?),
        Operator::Lt => Test::Less(number()?),
        Operator::Lte => Test::LessOrEqual(number()?),
        Operator::In => Test::In(ScalarSet::of(scalars()?)),
        Operator::NotIn => Test::NotIn(ScalarSet::of(scalars()?)),
        Operator::Between => {
            let bounds = value.as_array().and_then(|bounds| match bounds.as_slice() {
                [low, high] => low.as_f64().zip(high.as_f64()),
                _ => None,
            });
            match bounds {
                Some((low, high)) if low <= high => Test::Between(low, high),
                Some(_) => return Err(("value", "the low bound is above the high one".to_owned())),
                None => return Err(("value", "must be [low, high], two numbers".to_owned())),
            }
        }
        Operator::Exists => match value {
            Value::Bool(flag) => Test::Exists(*flag),
            _ => return Err(("value", "must be true or false".to_owned())),
        },
    };
    Ok(CompiledCondition { path, test })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule_set(rules: Value) -> RuleSet {
        serde_json::from_value(json!({ "rules": rules })).unwrap()
    }

    fn compiled(rules: Value) -> CompiledRuleSet {
        rule_set(rules).compile().unwrap()
    }

    fn problems(rules: Value) -> Vec<String> {
        rule_set(rules)
            .compile()
            .unwrap_err()
            .into_iter()
            .map(|problem| problem.field)
            .collect()
    }

    fn matches(op: &str, value: Value, data: Value) -> bool {
        compiled(json!([{
            "name": "r", "channels": ["sms"],
            "when": [{"field": "x.y", "op": op, "value": value}]
        }]))
        .decide(&json!({ "x": { "y": data } }))
        .is_some()
    }

    #[test]
    fn each_operator_tests_what_it_says() {
        assert!(matches("eq", json!("critical"), json!("critical")));
        assert!(!matches("eq", json!("critical"), json!("Critical")));
        assert!(
            matches("eq", json!(2), json!(2.0)),
            "numbers compare as numbers"
        );
        assert!(
            !matches("eq", json!("2"), json!(2)),
            "a string is not a number"
        );
        assert!(matches("ne", json!("low"), json!("high")));
        assert!(matches("gt", json!(90), json!(90.5)));
        assert!(!matches("gt", json!(90), json!(90)));
        assert!(matches("gte", json!(90), json!(90)));
        assert!(matches("lt", json!(0), json!(-1)));
        assert!(matches("lte", json!(0), json!(0)));
        assert!(
            !matches("gte", json!(90), json!("95")),
            "a string is no number"
        );
        assert!(matches("in", json!(["eu", "us"]), json!("us")));
        assert!(!matches("in", json!(["eu", "us"]), json!("ap")));
        assert!(matches("not_in", json!(["eu", "us"]), json!("ap")));
        for listed in [
            json!("a"),
            json!(2.0),
            json!(true),
            json!(null),
            json!(-0.0),
        ] {
            assert!(
                matches("in", json!(["a", 2, true, null, 0]), listed.clone()),
                "{listed}"
            );
        }
        for unlisted in [
            json!("b"),
            json!(3),
            json!(false),
            json!(["a"]),
            json!({"a": 1}),
        ] {
            assert!(
                !matches("in", json!(["a", 2, true, null]), unlisted.clone()),
                "{unlisted}"
            );
        }
        let many: Vec<i64> = (0..100).map(|number| number * 3).collect();
        assert!(matches("in", json!(many), json!(297)));
        assert!(!matches("in", json!(many), json!(298)));
        assert!(matches("between", json!([100, 500]), json!(100)));
        assert!(matches("between", json!([100, 500]), json!(500)));
        assert!(!matches("between", json!([100, 500]), json!(500.01)));
        assert!(
            matches("exists", json!(true), json!(null)),
            "a null field exists"
        );
        assert!(matches("eq", json!(null), json!(null)));
        assert!(matches("eq", json!(true), json!(true)));
    }

    /// A missing field (or a path through a non-object) fails every test but `exists: false`.
    #[test]
    fn a_missing_field_holds_for_nothing_but_its_absence() {
        for (op, value) in [
            ("eq", json!("x")),
            ("ne", json!("x")),
            ("gt", json!(0)),
            ("in", json!(["x"])),
            ("not_in", json!(["x"])),
            ("between", json!([0, 1])),
            ("exists", json!(true)),
        ] {
            let set = compiled(json!([{
                "name": "r", "channels": ["sms"],
                "when": [{"field": "x.y", "op": op, "value": value}]
            }]));
            assert!(set.decide(&json!({})).is_none(), "{op}");
            assert!(set.decide(&json!({"x": "scalar"})).is_none(), "{op}");
            assert!(set.decide(&json!({"x": {"z": 1}})).is_none(), "{op}");
        }
        let absent = compiled(json!([{
            "name": "r", "channels": ["sms"],
            "when": [{"field": "x", "op": "exists", "value": false}]
        }]));
        assert!(absent.decide(&json!({})).is_some());
        assert!(absent.decide(&json!({"x": 1})).is_none());
    }

    #[test]
    fn the_first_rule_whose_conditions_all_hold_decides() {
        let set = compiled(json!([
            {"name": "page", "channels": ["sms", "email"], "template_id": "page", "template_version": 3,
             "when": [{"field": "severity", "op": "eq", "value": "critical"},
                      {"field": "cpu", "op": "gte", "value": 90}]},
            {"name": "critical-quiet", "channels": ["email"],
             "when": [{"field": "severity", "op": "eq", "value": "critical"}]},
            {"name": "rest", "channels": ["slack"]}
        ]));
        let decision = set
            .decide(&json!({"severity": "critical", "cpu": 95}))
            .unwrap();
        assert_eq!(decision.rule, "page");
        assert_eq!(decision.template, Some(("page".into(), 3)));
        assert_eq!(decision.skip_reason(Channel::Sms), None);
        let decision = set
            .decide(&json!({"severity": "critical", "cpu": 50}))
            .unwrap();
        assert_eq!(decision.rule, "critical-quiet");
        assert_eq!(
            decision.skip_reason(Channel::Sms).as_deref(),
            Some("the routing rule `critical-quiet` does not route to sms")
        );
        assert_eq!(
            set.decide(&json!({})).unwrap().rule,
            "rest",
            "no conditions: always"
        );
        assert!(compiled(json!([])).decide(&json!({})).is_none());
    }

    #[test]
    fn every_problem_names_its_field() {
        let long = "x".repeat(MAX_LITERAL_CHARS + 1);
        assert_eq!(
            problems(json!([
                {"name": "", "channels": []},
                {"name": "a", "channels": ["sms", "sms"], "template_version": 2, "when": [
                    {"field": "", "op": "eq", "value": 1},
                    {"field": "a..b", "op": "eq", "value": 1},
                    {"field": "a", "op": "eq", "value": [1]},
                    {"field": "a", "op": "gt", "value": "9"},
                    {"field": "a", "op": "in", "value": []},
                    {"field": "a", "op": "in", "value": [{"x": 1}]},
                    {"field": "a", "op": "between", "value": [5, 1]},
                    {"field": "a", "op": "between", "value": [1]},
                    {"field": "a", "op": "exists", "value": "yes"},
                    {"field": "a", "op": "eq", "value": long}
                ]},
                {"name": "a", "channels": ["email"]}
            ])),
            [
                "rules[0].name",
                "rules[0].channels",
                "rules[1].channels[1]",
                "rules[1].template_version",
                "rules[1].when[0].field",
                "rules[1].when[1].field",
                "rules[1].when[2].value",
                "rules[1].when[3].value",
                "rules[1].when[4].value",
                "rules[1].when[5].value",
                "rules[1].when[6].value",
                "rules[1].when[7].value",
                "rules[1].when[8].value",
                "rules[1].when[9].value",
                "rules[2].name",
            ]
        );
        let too_many: Vec<Value> = (0..=MAX_RULES)
            .map(|index| json!({"name": format!("r{index}"), "channels": ["sms"]}))
            .collect();
        assert_eq!(problems(Value::Array(too_many)), ["rules"]);
        let deep = ["a"; MAX_FIELD_SEGMENTS + 1].join(".");
        assert_eq!(
            problems(json!([{"name": "r", "channels": ["sms"],
                             "when": [{"field": deep, "op": "exists", "value": true}]}])),
            ["rules[0].when[0].field"]
        );
    }

    #[test]
    fn a_template_id_no_template_can_have_is_named() {
        let long = "t".repeat(200);
        assert_eq!(
            problems(json!([
                {"name": "a", "channels": ["sms"], "template_id": ""},
                {"name": "b", "channels": ["sms"], "template_id": long},
                {"name": "c", "channels": ["sms"], "template_id": "page"}
            ])),
            ["rules[0].template_id", "rules[1].template_id"]
        );
    }

    #[test]
    fn unknown_members_and_operators_are_refused_when_read() {
        for document in [
            json!({"rules": [{"name": "r", "channels": ["sms"], "unless": []}]}),
            json!({"rules": [{"name": "r", "channels": ["sms"],
                              "when": [{"field": "a", "op": "matches", "value": ".*"}]}]}),
            json!({"rules": [{"name": "r", "channels": ["fax"]}]}),
        ] {
            assert!(serde_json::from_value::<RuleSet>(document).is_err());
        }
    }
}
