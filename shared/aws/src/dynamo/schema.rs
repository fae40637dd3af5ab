//! The table: its keys, indexes and TTL attribute, defined once here,
//! created from this definition (`DynamoStore::create_table`) and held to
//! infra/template.yaml by a test (`the_template_defines_the_table_the_adapter_uses`).

use super::*;

/// The table's partition and sort key attributes.
pub(super) const TABLE_KEY: (&str, &str) = ("pk", "sk");

/// The global secondary indexes: name, partition and sort key attributes.
/// Each projects every attribute.
pub(super) const INDEXES: [(&str, &str, &str); 3] = [
    (DUE_MILESTONES.name, DUE_MILESTONES.pk, DUE_MILESTONES.sk),
    (OWNER_INDEX, "owner_pk", "owner_sk"),
    (HEADS_UP_MILESTONES.name, HEADS_UP_MILESTONES.pk, HEADS_UP_MILESTONES.sk),
];

/// The attribute DynamoDB deletes expired items by (seconds since the epoch).
pub(super) const TTL_ATTRIBUTE: &str = "expires_at";

/// Every key attribute of the table and its indexes, in order (all strings).
fn key_attributes() -> Vec<&'static str> {
    let mut names = vec![TABLE_KEY.0, TABLE_KEY.1];
    for (_, pk, sk) in INDEXES {
        names.extend([pk, sk]);
    }
    names
}

impl DynamoStore {
    /// Creates the table as the SAM template defines it (for local runs and tests).
    pub async fn create_table(&self) -> StoreResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("complete attribute definition")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("complete key")
        };
        let gsi = |(name, pk, sk): (&str, &str, &str)| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(pk, KeyType::Hash))
                .key_schema(key(sk, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .expect("complete index")
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(key_attributes().into_iter().map(attr).collect()))
            .key_schema(key(TABLE_KEY.0, KeyType::Hash))
            .key_schema(key(TABLE_KEY.1, KeyType::Range))
            .set_global_secondary_indexes(Some(INDEXES.into_iter().map(gsi).collect()))
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .expect("complete TTL spec"),
            )
            .send()
            .await
            .map_err(|e| refused(e.into_service_error()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use marked_yaml::types::MarkedMappingNode;

    use super::*;

    /// The `Table` resource of infra/template.yaml, read from its own lines
    /// (the rest of the file holds CloudFormation tags a YAML reader refuses).
    fn template_table() -> MarkedMappingNode {
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml"))
            .expect("infra/template.yaml");
        let mut lines = template.lines().skip_while(|l| *l != "  Table:");
        let mut block = format!("{}\n", lines.next().expect("a Table resource"));
        // The resource ends at the next line indented as little as its name.
        for line in lines {
            let indent = line.len() - line.trim_start().len();
            if indent <= 2 && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        let node = marked_yaml::parse_yaml(0, &block).expect("the Table resource is YAML");
        node.as_mapping()
            .and_then(|m| m.get_mapping("Table"))
            .cloned()
            .expect("Table is a mapping")
    }

    /// An index as the template writes it: name, key schema, projection.
    type IndexDefinition = (String, Vec<(String, String)>, String);

    fn text(m: &MarkedMappingNode, key: &str) -> String {
        m.get_scalar(key)
            .unwrap_or_else(|| panic!("{key} is missing"))
            .as_str()
            .to_string()
    }

    fn key_schema(m: &MarkedMappingNode) -> Vec<(String, String)> {
        m.get_sequence("KeySchema")
            .expect("KeySchema")
            .iter()
            .map(|k| {
                let k = k.as_mapping().expect("a key");
                (text(k, "AttributeName"), text(k, "KeyType"))
            })
            .collect()
    }

    #[test]
    fn the_template_defines_the_table_the_adapter_uses() {
        let table = template_table();
        assert_eq!(text(&table, "Type"), "AWS::DynamoDB::Table");
        let properties = table.get_mapping("Properties").expect("Properties");
        assert_eq!(text(properties, "BillingMode"), "PAY_PER_REQUEST");
        let attributes: Vec<(String, String)> = properties
            .get_sequence("AttributeDefinitions")
            .expect("AttributeDefinitions")
            .iter()
            .map(|a| {
                let a = a.as_mapping().expect("an attribute");
                (text(a, "AttributeName"), text(a, "AttributeType"))
            })
            .collect();
        let expected: Vec<(String, String)> = key_attributes()
            .into_iter()
            .map(|name| (name.to_string(), "S".to_string()))
            .collect();
        assert_eq!(attributes, expected, "AttributeDefinitions");
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            key_schema(properties),
            [pair(TABLE_KEY.0, "HASH"), pair(TABLE_KEY.1, "RANGE")],
            "the table's KeySchema"
        );
        let indexes: Vec<IndexDefinition> = properties
            .get_sequence("GlobalSecondaryIndexes")
            .expect("GlobalSecondaryIndexes")
            .iter()
            .map(|i| {
                let i = i.as_mapping().expect("an index");
                let projection = i.get_mapping("Projection").expect("Projection");
                (text(i, "IndexName"), key_schema(i), text(projection, "ProjectionType"))
            })
            .collect();
        let expected: Vec<IndexDefinition> = INDEXES
            .into_iter()
            .map(|(name, pk, sk)| {
                (
                    name.to_string(),
                    vec![pair(pk, "HASH"), pair(sk, "RANGE")],
                    "ALL".to_string(),
                )
            })
            .collect();
        assert_eq!(indexes, expected, "GlobalSecondaryIndexes");
        let ttl = properties
            .get_mapping("TimeToLiveSpecification")
            .expect("TimeToLiveSpecification");
        assert_eq!(text(ttl, "AttributeName"), TTL_ATTRIBUTE);
        assert_eq!(text(ttl, "Enabled"), "true");
    }
}
