//! [`CloudWatchDashboards`]: a CloudWatch dashboard for every database of the AWS servers, the
//! monitoring step of the database golden path.

use std::collections::BTreeMap;

use async_trait::async_trait;
use paved_core::{DatabaseInfo, DatabaseMonitor, DatabaseRequest, Result};
use serde_json::json;

use crate::aws::{Aws, Client};
use crate::naming;

/// The monitor's name.
pub(crate) const BACKEND: &str = "cloudwatch";

/// What kind of database a server makes, which decides the dashboard's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseKind {
    /// An RDS instance (`AWS/RDS`, by `DBInstanceIdentifier`).
    Rds,
    /// A DocumentDB cluster (`AWS/DocDB`, by `DBClusterIdentifier`).
    DocumentDb,
}

/// A [`DatabaseMonitor`] that puts a CloudWatch dashboard per database: CPU, connections,
/// free storage (free memory for DocumentDB, whose storage grows by itself), and read and
/// write latency. The dashboard is named `paved-` and the database's identifier; putting it
/// again replaces it (idempotent), and deprovisioning removes it. Databases of servers it was
/// not told about (other backends) are left alone.
pub struct CloudWatchDashboards {
    client: Client<aws_sdk_cloudwatch::Client>,
    servers: BTreeMap<String, DatabaseKind>,
}

impl std::fmt::Debug for CloudWatchDashboards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchDashboards").field("servers", &self.servers).finish_non_exhaustive()
    }
}

impl CloudWatchDashboards {
    /// Dashboards on `aws`, for no server yet.
    pub fn new(aws: Aws) -> Self {
        CloudWatchDashboards { client: Client::new(aws, BACKEND), servers: BTreeMap::new() }
    }

    /// Watches the databases of server `name`, of `kind`.
    pub fn server(mut self, name: impl Into<String>, kind: DatabaseKind) -> Self {
        self.servers.insert(name.into(), kind);
        self
    }

    /// The dashboard's name for the database of `request`.
    pub fn dashboard_name(request: &DatabaseRequest) -> String {
        format!("paved-{}", naming::identifier(request))
    }

    /// The dashboard's JSON body.
    pub fn body(kind: DatabaseKind, request: &DatabaseRequest, region: &str) -> String {
        let id = naming::identifier(request);
        let (namespace, dimension, storage) = match kind {
            DatabaseKind::Rds => ("AWS/RDS", "DBInstanceIdentifier", ("FreeStorageSpace", "Free storage (bytes)")),
            DatabaseKind::DocumentDb => {
                ("AWS/DocDB", "DBClusterIdentifier", ("FreeableMemory", "Freeable memory (bytes)"))
            }
        };
        let panels = [
            ("CPUUtilization", "CPU (%)"),
            ("DatabaseConnections", "Connections"),
            storage,
            ("ReadLatency", "Read latency (s)"),
            ("WriteLatency", "Write latency (s)"),
        ];
        let widgets: Vec<_> = panels
            .iter()
            .enumerate()
            .map(|(i, (metric, title))| {
                json!({
                    "type": "metric",
                    "x": (i % 2) * 12, "y": (i / 2) * 6, "width": 12, "height": 6,
                    "properties": {
                        "title": title,
                        "region": region,
                        "stat": "Average",
                        "period": 300,
                        "view": "timeSeries",
                        "metrics": [[namespace, metric, dimension, id]],
                    },
                })
            })
            .collect();
        let header = json!({
            "type": "text", "x": 0, "y": 18, "width": 24, "height": 2,
            "properties": { "markdown": format!(
                "**{} database** of team **{}**, service **{}**, environment **{}** (managed by paved)",
                request.engine, request.team, request.service, request.environment
            ) },
        });
        let mut all = widgets;
        all.push(header);
        json!({ "widgets": all }).to_string()
    }
}

#[async_trait]
impl DatabaseMonitor for CloudWatchDashboards {
    fn name(&self) -> &str {
        BACKEND
    }

    async fn watch(&self, request: &DatabaseRequest, server: &str, _info: &DatabaseInfo) -> Result<Option<String>> {
        let Some(kind) = self.servers.get(server) else { return Ok(None) };
        let cw = self.client.get(aws_sdk_cloudwatch::Client::new).await?;
        let region = self.client.aws().region().await?;
        let name = Self::dashboard_name(request);
        cw.put_dashboard()
            .dashboard_name(&name)
            .dashboard_body(Self::body(*kind, request, &region))
            .send()
            .await
            .map_err(|e| self.client.fail(&format!("put the CloudWatch dashboard {name}"), e))?;
        Ok(Some(format!(
            "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/{name}"
        )))
    }

    async fn unwatch(&self, request: &DatabaseRequest, server: &str) -> Result<()> {
        if !self.servers.contains_key(server) {
            return Ok(());
        }
        let cw = self.client.get(aws_sdk_cloudwatch::Client::new).await?;
        let name = Self::dashboard_name(request);
        match cw.delete_dashboards().dashboard_names(&name).send().await {
            Ok(_) => Ok(()),
            Err(e) if crate::error::code(&e).is_some_and(|c| c.contains("NotFound")) => Ok(()),
            Err(e) => Err(self.client.fail(&format!("delete the CloudWatch dashboard {name}"), e)),
        }
    }
}
