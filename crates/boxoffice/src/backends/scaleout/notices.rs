//! Notices over Redis pub/sub, on a connection of their own: every instance subscribes to
//! `<prefix>notices`. A subscription that breaks is made again after a second, followed by a
//! `Resync` notice, since anything published meanwhile was missed.

use crate::domain::{Error, Result};
use crate::notices::{Notice, Notices};
use async_trait::async_trait;
use futures::StreamExt;
use std::time::Duration;
use tokio::sync::broadcast;

pub struct RedisNotices {
    client: redis::Client,
    channel: String,
    timeout: Duration,
    local: broadcast::Sender<Notice>,
    listener: tokio::task::JoinHandle<()>,
}

impl RedisNotices {
    pub fn start(url: &str, prefix: &str, timeout: Duration) -> Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| Error::new(crate::domain::Code::InvalidRedisUrl, e.to_string()))?;
        let channel = format!("{prefix}notices");
        let local = broadcast::channel(1024).0;
        let listener = tokio::spawn(listen(client.clone(), channel.clone(), local.clone()));
        Ok(Self { client, channel, timeout, local, listener })
    }
}

impl Drop for RedisNotices {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

async fn listen(client: redis::Client, channel: String, local: broadcast::Sender<Notice>) {
    let mut subscribed_before = false;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut sub) => {
                if sub.subscribe(&channel).await.is_ok() {
                    if subscribed_before {
                        let _ = local.send(Notice::Resync);
                    }
                    subscribed_before = true;
                    let mut messages = sub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else { continue };
                        match serde_json::from_str::<Notice>(&payload) {
                            Ok(n) => {
                                let _ = local.send(n);
                            }
                            Err(e) => tracing::warn!(error = %e, "unreadable notice"),
                        }
                    }
                }
                tracing::warn!("the notice subscription ended; subscribing again");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to notices; trying again"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[async_trait]
impl Notices for RedisNotices {
    async fn publish(&self, notice: Notice) -> Result<()> {
        let body = serde_json::to_string(&notice).map_err(|e| Error::internal(e.to_string()))?;
        let send = async {
            let mut c = self.client.get_multiplexed_async_connection().await?;
            redis::cmd("PUBLISH").arg(&self.channel).arg(body).query_async::<i64>(&mut c).await
        };
        match tokio::time::timeout(self.timeout, send).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Error::unavailable("queue", e)),
            Err(_) => Err(Error::unavailable("queue", "Redis did not answer in time")),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.local.subscribe()
    }
}
