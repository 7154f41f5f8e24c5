//! Kafka readers for tests and benchmarks.

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A client config for `bootstrap` (host:port list).
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

/// A reader of partitions `0..partitions` of each topic, from the beginning. Assigned, not
/// subscribed: no group, so no rebalance can make it skip or repeat a partition.
pub fn reader_from_start<T: AsRef<str>>(bootstrap: &str, topics: &[T], partitions: i32) -> StreamConsumer {
    let consumer: StreamConsumer = client_config(bootstrap)
        .set("group.id", crate::unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        for p in 0..partitions {
            tpl.add_partition_offset(topic.as_ref(), p, Offset::Beginning)
                .expect("reader offsets");
        }
    }
    consumer.assign(&tpl).expect("reader assignment");
    consumer
}

/// Drops a consumer off the async runtime: librdkafka's close blocks, and a hang there would not be
/// caught by a tokio timeout (see shared/test-broker.md).
pub async fn drop_consumer<C: Send + 'static>(consumer: C) {
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .expect("consumer drop");
}
