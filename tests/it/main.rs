//! Integration tests against a real Kafka-protocol broker (Tansu) and the LangSmith simulator,
//! both over real loopback sockets.

mod cli;
mod faults;
mod harness;
mod intake;
mod logs;
mod prometheus;
mod schemas;
mod support;
mod verify;
mod world;
