//! `DocDbProvisioner` against a stand-in DocumentDB endpoint over HTTP: moto has no DocumentDB
//! backend, so this test serves the documented Query API (`Action=…&Version=2014-10-31`, XML
//! answers of the documented shapes, the documented error codes) with a small stateful server:
//! clusters and instances go from `creating` to `available` one look-up later, an instance must
//! be deleted before its cluster, deletion protection refuses a delete. The real SDK client,
//! signing and XML parsing run against it. The `DbProvisioner` behaviour suite runs on it too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use paved_aws::{Aws, AwsDbServerSettings, AwsSettings, Credentials, DocDbProvisioner, naming};
use paved_core::{DatabaseRequest, DatabaseState, DbEngine, DbProvisioner, DeprovisionOptions, ErrorKind};
use paved_testkit::behavior::db_provisioner::{DbProvisionerHarness, run};

const ACCOUNT: &str = "123456789012";

#[derive(Debug, Clone)]
struct Cluster {
    status: String,
    protected: bool,
    tags: Vec<(String, String)>,
    secret: String,
}

#[derive(Debug, Clone)]
struct Instance {
    cluster: String,
    status: String,
}

/// The stand-in's state, and every request it was sent (`Action` and parameters).
#[derive(Default)]
struct State {
    clusters: BTreeMap<String, Cluster>,
    instances: BTreeMap<String, Instance>,
    requests: Vec<BTreeMap<String, String>>,
}

type Shared = Arc<Mutex<State>>;

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn arn(id: &str) -> String {
    format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster:{id}")
}

fn cluster_xml(id: &str, c: &Cluster, members: &[String]) -> String {
    let members: String = members
        .iter()
        .map(|m| format!("<DBClusterMember><DBInstanceIdentifier>{m}</DBInstanceIdentifier><IsClusterWriter>true</IsClusterWriter></DBClusterMember>"))
        .collect();
    format!(
        "<DBClusterIdentifier>{id}</DBClusterIdentifier><DBClusterArn>{}</DBClusterArn><Engine>docdb</Engine><Status>{}</Status>\
<Endpoint>{id}.cluster-c1.us-east-1.docdb.amazonaws.com</Endpoint><Port>27017</Port><MasterUsername>paved_admin</MasterUsername>\
<DeletionProtection>{}</DeletionProtection><StorageEncrypted>true</StorageEncrypted><DBClusterMembers>{members}</DBClusterMembers>\
<MasterUserSecret><SecretArn>{}</SecretArn><SecretStatus>active</SecretStatus></MasterUserSecret>",
        arn(id),
        c.status,
        c.protected,
        c.secret
    )
}

fn instance_xml(id: &str, i: &Instance) -> String {
    format!(
        "<DBInstanceIdentifier>{id}</DBInstanceIdentifier><DBClusterIdentifier>{}</DBClusterIdentifier><Engine>docdb</Engine>\
<DBInstanceClass>db.t4g.medium</DBInstanceClass><DBInstanceStatus>{}</DBInstanceStatus>",
        i.cluster, i.status
    )
}

fn ok(action: &str, result: &str) -> (u16, String) {
    (
        200,
        format!(
            "<{action}Response xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><{action}Result>{result}</{action}Result>\
<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{action}Response>"
        ),
    )
}

fn error(status: u16, code: &str, message: &str) -> (u16, String) {
    (
        status,
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        ),
    )
}

/// Answers one request of the Query API.
fn answer(state: &mut State, p: &BTreeMap<String, String>) -> (u16, String) {
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let action = get("Action");
    if get("Version") != "2014-10-31" {
        return error(400, "InvalidParameterValue", "unsupported Version");
    }
    match action.as_str() {
        "DescribeDBClusters" => {
            let id = get("DBClusterIdentifier");
            let Some(c) = state.clusters.get_mut(&id) else {
                return error(404, "DBClusterNotFoundFault", &format!("DBCluster {id} not found."));
            };
            // One look-up later: creating → available, deleting → gone.
            let shown = c.clone();
            match c.status.as_str() {
                "creating" => c.status = "available".into(),
                "deleting" => {
                    state.clusters.remove(&id);
                }
                _ => {}
            }
            let members: Vec<String> =
                state.instances.iter().filter(|(_, i)| i.cluster == id).map(|(n, _)| n.clone()).collect();
            ok(
                "DescribeDBClusters",
                &format!("<DBClusters><DBCluster>{}</DBCluster></DBClusters>", cluster_xml(&id, &shown, &members)),
            )
        }
        "CreateDBCluster" => {
            let id = get("DBClusterIdentifier");
            if state.clusters.contains_key(&id) {
                return error(400, "DBClusterAlreadyExistsFault", "DB Cluster already exists");
            }
            if get("Engine") != "docdb" || get("MasterUsername").is_empty() {
                return error(400, "InvalidParameterValue", "Engine docdb and MasterUsername are required");
            }
            if p.contains_key("MasterUserPassword") == (get("ManageMasterUserPassword") == "true") {
                return error(
                    400,
                    "InvalidParameterCombination",
                    "exactly one of MasterUserPassword and ManageMasterUserPassword",
                );
            }
            let mut tags = Vec::new();
            for n in 1.. {
                let Some(k) = p.get(&format!("Tags.Tag.{n}.Key")) else { break };
                tags.push((k.clone(), p.get(&format!("Tags.Tag.{n}.Value")).cloned().unwrap_or_default()));
            }
            let c = Cluster {
                status: "creating".into(),
                protected: get("DeletionProtection") == "true",
                tags,
                secret: format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:docdb!{id}-AbCdEf"),
            };
            let xml = cluster_xml(&id, &c, &[]);
            state.clusters.insert(id, c);
            ok("CreateDBCluster", &format!("<DBCluster>{xml}</DBCluster>"))
        }
        "DescribeDBInstances" => {
            let id = get("DBInstanceIdentifier");
            let Some(i) = state.instances.get_mut(&id) else {
                return error(404, "DBInstanceNotFound", &format!("DBInstance {id} not found."));
            };
            let shown = i.clone();
            match i.status.as_str() {
                "creating" => i.status = "available".into(),
                "deleting" => {
                    state.instances.remove(&id);
                }
                _ => {}
            }
            ok(
                "DescribeDBInstances",
                &format!("<DBInstances><DBInstance>{}</DBInstance></DBInstances>", instance_xml(&id, &shown)),
            )
        }
        "CreateDBInstance" => {
            let (id, cluster) = (get("DBInstanceIdentifier"), get("DBClusterIdentifier"));
            if state.instances.contains_key(&id) {
                return error(400, "DBInstanceAlreadyExists", "DB instance already exists");
            }
            if !state.clusters.contains_key(&cluster) {
                return error(404, "DBClusterNotFoundFault", "DBCluster not found");
            }
            let i = Instance { cluster, status: "creating".into() };
            let xml = instance_xml(&id, &i);
            state.instances.insert(id, i);
            ok("CreateDBInstance", &format!("<DBInstance>{xml}</DBInstance>"))
        }
        "DeleteDBInstance" => {
            let id = get("DBInstanceIdentifier");
            let Some(i) = state.instances.get_mut(&id) else { return error(404, "DBInstanceNotFound", "not found") };
            i.status = "deleting".into();
            let xml = instance_xml(&id, i);
            ok("DeleteDBInstance", &format!("<DBInstance>{xml}</DBInstance>"))
        }
        "ModifyDBCluster" => {
            let id = get("DBClusterIdentifier");
            let Some(c) = state.clusters.get_mut(&id) else { return error(404, "DBClusterNotFoundFault", "not found") };
            if let Some(v) = p.get("DeletionProtection") {
                c.protected = v == "true";
            }
            let xml = cluster_xml(&id, c, &[]);
            ok("ModifyDBCluster", &format!("<DBCluster>{xml}</DBCluster>"))
        }
        "DeleteDBCluster" => {
            let id = get("DBClusterIdentifier");
            let members = state.instances.values().filter(|i| i.cluster == id && i.status != "deleting").count();
            let Some(c) = state.clusters.get_mut(&id) else { return error(404, "DBClusterNotFoundFault", "not found") };
            if c.protected {
                return error(
                    400,
                    "InvalidParameterCombination",
                    "Cluster cannot be deleted, it has DeletionProtection enabled.",
                );
            }
            if members > 0 {
                return error(
                    400,
                    "InvalidDBClusterStateFault",
                    "Cluster cannot be deleted, it still contains DB instances in non-deleting state.",
                );
            }
            if (get("SkipFinalSnapshot") == "true") == p.contains_key("FinalDBSnapshotIdentifier") {
                return error(
                    400,
                    "InvalidParameterCombination",
                    "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot",
                );
            }
            c.status = "deleting".into();
            let xml = cluster_xml(&id, c, &[]);
            ok("DeleteDBCluster", &format!("<DBCluster>{xml}</DBCluster>"))
        }
        "DescribeDBSubnetGroups" => error(404, "DBSubnetGroupNotFoundFault", "DBSubnetGroup not found."),
        "ListTagsForResource" => {
            let name = get("ResourceName");
            let Some((_, c)) = state.clusters.iter().find(|(id, _)| arn(id) == name) else {
                return error(404, "DBClusterNotFoundFault", "not found");
            };
            let tags: String =
                c.tags.iter().map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>")).collect();
            ok("ListTagsForResource", &format!("<TagList>{tags}</TagList>"))
        }
        other => error(400, "InvalidAction", &format!("{other} is not an action of this stand-in")),
    }
}

/// Starts the stand-in; answers its endpoint and state.
fn docdb() -> (String, Shared) {
    let state: Shared = Arc::default();
    let shared = state.clone();
    let url = paved_testkit::stand_in(move |request| {
        let params: BTreeMap<String, String> = String::from_utf8_lossy(&request.body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        let mut state = shared.lock().unwrap();
        state.requests.push(params.clone());
        let (status, xml) = answer(&mut state, &params);
        (status, "text/xml", xml)
    });
    (url, state)
}

fn provisioner(url: &str) -> DocDbProvisioner {
    let settings = {
        let text = "[databases.docdb]\nbackend = \"aws-docdb\"\nengine = \"mongodb\"\npoll_seconds = 1\n";
        let config = paved_core::OrgConfig::parse("paved.toml", text).unwrap();
        AwsDbServerSettings::from_org_config(&config, "docdb").unwrap()
    };
    let mut aws = AwsSettings::default();
    aws.region = Some("us-east-1".into());
    let aws = Aws::at_endpoint(aws, url, Credentials::new("testing", "testing", None, None, "test"));
    DocDbProvisioner::new(aws, "docdb", settings)
}

fn request(env: &str) -> DatabaseRequest {
    DatabaseRequest::new("payments", "ledger", "mongodb", env, "small").unwrap()
}

/// The requests of `action`, in order.
fn sent(state: &Shared, action: &str) -> Vec<BTreeMap<String, String>> {
    state.lock().unwrap().requests.iter().filter(|p| p.get("Action").is_some_and(|a| a == action)).cloned().collect()
}

#[tokio::test]
async fn documentdb_passes_the_db_provisioner_suite() {
    let (url, _) = docdb();
    // Connection info kept by the provisioner, in the in-memory reference store.
    let store = Arc::new(paved_testkit::memory::MemorySecretStore::new());
    let provisioner = Arc::new(provisioner(&url).connection_info(store));
    let harness = DbProvisionerHarness::new(provisioner, DbEngine::Mongodb).refusing(DbEngine::Postgres);
    let report = run(&harness).await;
    assert!(report.failed.is_empty(), "{report}");
    for (name, why) in &report.skipped {
        assert!(why.contains("Probe"), "{name} skipped: {why}");
    }
}

#[tokio::test]
async fn a_mongodb_request_makes_a_tagged_encrypted_cluster_and_an_instance_and_waits_for_both() {
    let (url, state) = docdb();
    let p = provisioner(&url);
    let r = request("staging");
    let (id, instance) = (naming::identifier(&r), naming::instance_identifier(&r));
    let info = p.provision(&r).await.unwrap();
    assert_eq!(info.state, DatabaseState::Available);
    assert_eq!(info.endpoint, Some((format!("{id}.cluster-c1.us-east-1.docdb.amazonaws.com"), 27017)));
    assert_eq!(
        info.credentials_path,
        Some(format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:docdb!{id}-AbCdEf"))
    );
    assert_eq!(info.username.as_deref(), Some("paved_admin"));
    let create = sent(&state, "CreateDBCluster");
    assert_eq!(create.len(), 1);
    let c = &create[0];
    for (k, v) in [
        ("DBClusterIdentifier", id.as_str()),
        ("Engine", "docdb"),
        ("ManageMasterUserPassword", "true"),
        ("StorageEncrypted", "true"),
        ("DeletionProtection", "false"),
        ("BackupRetentionPeriod", "1"),
        ("MasterUsername", "paved_admin"),
    ] {
        assert_eq!(c.get(k).map(String::as_str), Some(v), "{k} in {c:?}");
    }
    assert!(!c.contains_key("MasterUserPassword"), "never a password: {c:?}");
    let instance_call = &sent(&state, "CreateDBInstance")[0];
    assert_eq!(instance_call.get("DBInstanceIdentifier"), Some(&instance));
    assert_eq!(instance_call.get("DBClusterIdentifier"), Some(&id));
    assert_eq!(instance_call.get("DBInstanceClass").map(String::as_str), Some("db.t4g.medium"));
    // Again: the same answer, nothing created.
    assert_eq!(p.provision(&r).await.unwrap(), info);
    assert_eq!(sent(&state, "CreateDBCluster").len() + sent(&state, "CreateDBInstance").len(), 2);
}

#[tokio::test]
async fn a_protected_cluster_is_refused_unless_forced_and_then_keeps_a_final_snapshot() {
    let (url, state) = docdb();
    let p = provisioner(&url);
    let r = request("production");
    let id = naming::identifier(&r);
    p.provision(&r).await.unwrap();
    assert_eq!(sent(&state, "CreateDBCluster")[0].get("DeletionProtection").map(String::as_str), Some("true"));
    assert_eq!(sent(&state, "CreateDBCluster")[0].get("BackupRetentionPeriod").map(String::as_str), Some("7"));
    let e = p.deprovision(&r, false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(
        sent(&state, "ModifyDBCluster").is_empty() && sent(&state, "DeleteDBCluster").is_empty(),
        "nothing changed"
    );
    p.deprovision_with(&r, &DeprovisionOptions::new().force(true)).await.unwrap();
    assert_eq!(sent(&state, "ModifyDBCluster")[0].get("DeletionProtection").map(String::as_str), Some("false"));
    assert_eq!(sent(&state, "DeleteDBInstance").len(), 1, "the instance goes before its cluster");
    let delete = &sent(&state, "DeleteDBCluster")[0];
    assert!(
        delete.get("FinalDBSnapshotIdentifier").is_some_and(|s| s.starts_with(&format!("{id}-final-"))),
        "{delete:?}"
    );
    assert_eq!(p.status(&r).await.unwrap().state, DatabaseState::Absent);
    // Postgres is not DocumentDB's.
    let pg = DatabaseRequest::new("payments", "ledger", "postgres", "dev", "small").unwrap();
    assert!(p.provision(&pg).await.unwrap_err().hint().unwrap().contains("aws-rds"));
}

#[tokio::test]
async fn a_cluster_paved_did_not_tag_for_this_request_is_never_adopted_or_deleted() {
    let (url, state) = docdb();
    let p = provisioner(&url);
    let r = request("dev");
    // Team billing's cluster under this request's identifier.
    let other = DatabaseRequest::new("billing", "ledger", "mongodb", "dev", "small").unwrap();
    state.lock().unwrap().clusters.insert(
        naming::identifier(&r),
        Cluster { status: "available".into(), protected: false, tags: naming::tags(&other), secret: "arn:x".into() },
    );
    for e in [
        p.provision(&r).await.unwrap_err(),
        p.status(&r).await.unwrap_err(),
        p.deprovision_with(&r, &DeprovisionOptions::new().drop_data(true).force(true)).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(e.to_string().contains("never adopted") && e.to_string().contains("team billing"), "{e}");
    }
    assert!(sent(&state, "CreateDBCluster").is_empty() && sent(&state, "DeleteDBCluster").is_empty());
    // An instance of that name in another cluster is not taken over either.
    state.lock().unwrap().clusters.clear();
    state.lock().unwrap().instances.insert(
        naming::instance_identifier(&r),
        Instance { cluster: "someone-elses".into(), status: "available".into() },
    );
    let e = p.provision(&r).await.unwrap_err();
    assert!(e.to_string().contains("exists in cluster someone-elses"), "{e}");
}
