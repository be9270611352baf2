"""The peer of benches/benches/aws.rs: provision N RDS instances against moto with boto3, with
the same calls and settings as paved's RdsProvisioner (look up, create with a managed master
password and the ownership tags, look up again until available), CONCURRENCY at a time.

Prints `wall_seconds cpu_seconds_per_request` for each of ROUNDS rounds.
usage: boto3_provision.py ENDPOINT N CONCURRENCY ROUNDS
"""
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

endpoint, n, concurrency, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rds = boto3.client("rds", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")


def provision(ident):
    try:
        rds.describe_db_instances(DBInstanceIdentifier=ident)
    except rds.exceptions.DBInstanceNotFoundFault:
        rds.create_db_instance(
            DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t4g.micro", AllocatedStorage=20,
            StorageType="gp3", DBName=ident.replace("-", "_"), MasterUsername="paved_admin",
            ManageMasterUserPassword=True, StorageEncrypted=True, PubliclyAccessible=False, MultiAZ=False,
            DeletionProtection=False, BackupRetentionPeriod=1, CopyTagsToSnapshot=True, AutoMinorVersionUpgrade=True,
            Tags=[{"Key": "managed-by", "Value": "paved"}, {"Key": "paved.dev/team", "Value": "bench"},
                  {"Key": "paved.dev/service", "Value": ident}, {"Key": "paved.dev/environment", "Value": "dev"}])
    while True:
        i = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        if i["DBInstanceStatus"] == "available":
            return i["Endpoint"]["Address"]
        time.sleep(1)


for r in range(rounds):
    wall, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(provision, [f"boto3-{r}-{i}" for i in range(n)]))
    print(f"{time.perf_counter() - wall:.3f} {(time.process_time() - cpu) / n * 1000:.3f}")
