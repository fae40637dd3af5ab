//! The integrations function's handler on DynamoDB (moto), one binary: the
//! webhooks and Slack (`on_dynamodb`), HubSpot (`hubspot`).

mod hubspot;
mod on_dynamodb;
