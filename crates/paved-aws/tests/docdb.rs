//! `DocDbProvisioner` with the SDK's request/response test tooling (`aws-smithy-mocks`): moto
//! has no DocumentDB backend, so the responses are the documented API shapes of
//! `DescribeDBClusters`, `CreateDBCluster`, `CreateDBInstance`, `ListTagsForResource`,
//! `DeleteDBCluster`. Every request paved sends is checked against what the API documents.

use std::sync::{Arc, Mutex};

use aws_sdk_docdb::Client;
use aws_sdk_docdb::operation::create_db_cluster::CreateDbClusterOutput;
use aws_sdk_docdb::operation::create_db_instance::CreateDbInstanceOutput;
use aws_sdk_docdb::operation::delete_db_cluster::DeleteDbClusterOutput;
use aws_sdk_docdb::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_docdb::operation::describe_db_clusters::{DescribeDBClustersError, DescribeDbClustersOutput};
use aws_sdk_docdb::operation::describe_db_instances::{DescribeDBInstancesError, DescribeDbInstancesOutput};
use aws_sdk_docdb::operation::list_tags_for_resource::ListTagsForResourceOutput;
use aws_sdk_docdb::types::error::{DbClusterNotFoundFault, DbInstanceNotFoundFault};
use aws_sdk_docdb::types::{ClusterMasterUserSecret, DbCluster, DbInstance, Tag};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use paved_aws::{Aws, AwsDbServerSettings, AwsSettings, DocDbProvisioner, naming};
use paved_core::{DatabaseRequest, DatabaseState, DbProvisioner, DeprovisionOptions, ErrorKind};

const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:docdb!cluster-1-AbCdEf";

fn request(env: &str) -> DatabaseRequest {
    DatabaseRequest::new("payments", "ledger", "mongodb", env, "small").unwrap()
}

fn cluster(id: &str, status: &str, protected: bool) -> DbCluster {
    DbCluster::builder()
        .db_cluster_identifier(id)
        .db_cluster_arn(format!("arn:aws:rds:us-east-1:123456789012:cluster:{id}"))
        .status(status)
        .endpoint(format!("{id}.cluster-c1.us-east-1.docdb.amazonaws.com"))
        .port(27017)
        .master_username("paved_admin")
        .deletion_protection(protected)
        .master_user_secret(ClusterMasterUserSecret::builder().secret_arn(SECRET).secret_status("active").build())
        .build()
}

fn tags(request: &DatabaseRequest) -> Vec<Tag> {
    naming::tags(request).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

fn provisioner(client: Client) -> DocDbProvisioner {
    let settings = {
        let text = "[databases.docdb]\nbackend = \"aws-docdb\"\nengine = \"mongodb\"\npoll_seconds = 1\n";
        let config = paved_core::OrgConfig::parse("paved.toml", text).unwrap();
        AwsDbServerSettings::from_org_config(&config, "docdb").unwrap()
    };
    DocDbProvisioner::new(Aws::new(AwsSettings::default()), "docdb", settings).with_client(client)
}

#[tokio::test]
async fn a_mongodb_request_makes_a_tagged_encrypted_cluster_and_an_instance_and_waits_for_both() {
    let r = request("staging");
    let (id, instance) = (naming::identifier(&r), naming::instance_identifier(&r));
    let created = Arc::new(Mutex::new(Vec::new()));
    let (c1, c2) = (created.clone(), created.clone());
    let (cid, cid2, cid3) = (id.clone(), id.clone(), id.clone());
    let describe_clusters = mock!(Client::describe_db_clusters)
        .sequence()
        .error(|| DescribeDBClustersError::DbClusterNotFoundFault(DbClusterNotFoundFault::builder().build()))
        .output(move || DescribeDbClustersOutput::builder().db_clusters(cluster(&cid, "creating", false)).build())
        .times(2)
        .output(move || DescribeDbClustersOutput::builder().db_clusters(cluster(&cid2, "available", false)).build())
        .repeatedly()
        .build();
    let (inst, of) = (instance.clone(), id.clone());
    let describe_instances = mock!(Client::describe_db_instances)
        .sequence()
        .error(|| DescribeDBInstancesError::DbInstanceNotFoundFault(DbInstanceNotFoundFault::builder().build()))
        .output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier(&inst)
                        .db_cluster_identifier(&of)
                        .db_instance_status("available")
                        .build(),
                )
                .build()
        })
        .repeatedly()
        .build();
    let create_cluster = mock!(Client::create_db_cluster)
        .match_requests(move |req| {
            c1.lock().unwrap().push(format!(
                "cluster {} engine={} managed={:?} encrypted={:?} protected={:?} backups={:?} user={}",
                req.db_cluster_identifier().unwrap_or_default(),
                req.engine().unwrap_or_default(),
                req.manage_master_user_password(),
                req.storage_encrypted(),
                req.deletion_protection(),
                req.backup_retention_period(),
                req.master_username().unwrap_or_default(),
            ));
            // Never a password: the service manages it.
            req.master_user_password().is_none() && req.tags().iter().any(|t| t.key() == Some("managed-by"))
        })
        .then_output(move || CreateDbClusterOutput::builder().db_cluster(cluster(&cid3, "creating", false)).build());
    let create_instance = mock!(Client::create_db_instance)
        .match_requests(move |req| {
            c2.lock().unwrap().push(format!(
                "instance {} of {} class={}",
                req.db_instance_identifier().unwrap_or_default(),
                req.db_cluster_identifier().unwrap_or_default(),
                req.db_instance_class().unwrap_or_default()
            ));
            true
        })
        .then_output(|| CreateDbInstanceOutput::builder().build());
    let rt = r.clone();
    let list_tags = mock!(Client::list_tags_for_resource)
        .then_output(move || ListTagsForResourceOutput::builder().set_tag_list(Some(tags(&rt))).build());
    let client = mock_client!(
        aws_sdk_docdb,
        RuleMode::MatchAny,
        [&describe_clusters, &describe_instances, &create_cluster, &create_instance, &list_tags]
    );
    let p = provisioner(client);
    let info = p.provision(&r).await.unwrap();
    assert_eq!(info.state, DatabaseState::Available);
    assert_eq!(info.endpoint, Some((format!("{id}.cluster-c1.us-east-1.docdb.amazonaws.com"), 27017)));
    assert_eq!(info.credentials_path.as_deref(), Some(SECRET));
    assert_eq!(info.username.as_deref(), Some("paved_admin"));
    assert_eq!(
        created.lock().unwrap().as_slice(),
        [
            format!(
                "cluster {id} engine=docdb managed=Some(true) encrypted=Some(true) protected=Some(false) backups=Some(1) user=paved_admin"
            ),
            format!("instance {instance} of {id} class=db.t4g.medium"),
        ]
    );
    assert_eq!(create_cluster.num_calls(), 1);
    assert_eq!(create_instance.num_calls(), 1);
}

#[tokio::test]
async fn a_protected_cluster_is_refused_unless_forced_and_then_keeps_a_final_snapshot() {
    let r = request("production");
    let id = naming::identifier(&r);
    let (a, b) = (id.clone(), id.clone());
    let describe_clusters = mock!(Client::describe_db_clusters)
        .sequence()
        .output(move || DescribeDbClustersOutput::builder().db_clusters(cluster(&a, "available", true)).build())
        .times(2)
        .error(|| DescribeDBClustersError::DbClusterNotFoundFault(DbClusterNotFoundFault::builder().build()))
        .repeatedly()
        .build();
    let (inst, of) = (naming::instance_identifier(&r), id.clone());
    let describe_instances = mock!(Client::describe_db_instances)
        .sequence()
        .output(move || {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier(&inst)
                        .db_cluster_identifier(&of)
                        .db_instance_status("available")
                        .build(),
                )
                .build()
        })
        .error(|| DescribeDBInstancesError::DbInstanceNotFoundFault(DbInstanceNotFoundFault::builder().build()))
        .repeatedly()
        .build();
    let rt = r.clone();
    let list_tags = mock!(Client::list_tags_for_resource)
        .then_output(move || ListTagsForResourceOutput::builder().set_tag_list(Some(tags(&rt))).build());
    let modify = mock!(Client::modify_db_cluster)
        .match_requests(|req| req.deletion_protection() == Some(false))
        .then_output(|| aws_sdk_docdb::operation::modify_db_cluster::ModifyDbClusterOutput::builder().build());
    let deleted = Arc::new(Mutex::new(String::new()));
    let d = deleted.clone();
    let delete = mock!(Client::delete_db_cluster)
        .match_requests(move |req| {
            *d.lock().unwrap() = format!(
                "{} skip={:?} snapshot={}",
                req.db_cluster_identifier().unwrap_or_default(),
                req.skip_final_snapshot(),
                req.final_db_snapshot_identifier().unwrap_or_default()
            );
            true
        })
        .then_output(move || DeleteDbClusterOutput::builder().db_cluster(cluster(&b, "deleting", false)).build());
    let delete_instance = mock!(Client::delete_db_instance).then_output(|| DeleteDbInstanceOutput::builder().build());
    let client = mock_client!(
        aws_sdk_docdb,
        RuleMode::MatchAny,
        [&describe_clusters, &describe_instances, &list_tags, &modify, &delete, &delete_instance]
    );
    let p = provisioner(client);
    let e = p.deprovision(&r, false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert_eq!(modify.num_calls() + delete.num_calls(), 0, "nothing changed");
    p.deprovision_with(&r, &DeprovisionOptions::new().force(true)).await.unwrap();
    assert_eq!(modify.num_calls(), 1);
    let deleted = deleted.lock().unwrap().clone();
    assert!(deleted.starts_with(&format!("{id} skip=Some(false) snapshot={id}-final-")), "{deleted}");
    assert_eq!(delete_instance.num_calls(), 1, "the instance goes before its cluster");
    // Postgres is not DocumentDB's.
    let pg = DatabaseRequest::new("payments", "ledger", "postgres", "dev", "small").unwrap();
    assert!(p.provision(&pg).await.unwrap_err().hint().unwrap().contains("aws-rds"));
}

#[tokio::test]
async fn a_cluster_paved_did_not_tag_for_this_request_is_never_adopted_or_deleted() {
    let r = request("dev");
    let id = naming::identifier(&r);
    let other = DatabaseRequest::new("billing", "ledger", "mongodb", "dev", "small").unwrap();
    let a = id.clone();
    let describe_clusters = mock!(Client::describe_db_clusters)
        .then_output(move || DescribeDbClustersOutput::builder().db_clusters(cluster(&a, "available", false)).build());
    // Another team's tags on a cluster with this request's identifier.
    let list_tags = mock!(Client::list_tags_for_resource)
        .then_output(move || ListTagsForResourceOutput::builder().set_tag_list(Some(tags(&other))).build());
    let create = mock!(Client::create_db_cluster).then_output(|| CreateDbClusterOutput::builder().build());
    let delete = mock!(Client::delete_db_cluster).then_output(|| DeleteDbClusterOutput::builder().build());
    let client = mock_client!(aws_sdk_docdb, RuleMode::MatchAny, [&describe_clusters, &list_tags, &create, &delete]);
    let p = provisioner(client);
    for e in [
        p.provision(&r).await.unwrap_err(),
        p.status(&r).await.unwrap_err(),
        p.deprovision_with(&r, &DeprovisionOptions::new().drop_data(true).force(true)).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(e.to_string().contains("never adopted") && e.to_string().contains("team billing"), "{e}");
    }
    assert_eq!(create.num_calls() + delete.num_calls(), 0);
}
