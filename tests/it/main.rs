//! Integration tests against a real Kafka-protocol broker (Tansu) and the LangSmith simulator,
//! both over real loopback sockets.

mod audit;
mod broker;
mod chaos;
mod cli;
mod contract;
mod due;
mod examples;
mod faults;
mod fidelity;
mod harness;
mod hostile;
mod intake;
mod isolation;
mod journal;
mod logs;
mod outage;
mod owners;
mod pressure;
mod prometheus;
mod proxy;
mod record;
mod schemas;
mod session;
mod stream;
mod subject;
mod support;
mod takeover;
mod verify;
mod world;
