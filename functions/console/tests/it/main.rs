//! The console's tests through its Lambda handler, one binary: every
//! scenario on the embedded store and on DynamoDB (moto), each request held
//! to the routes the SAM template gives the function, and what it asks of
//! AWS to the grants.

mod console;
