"""Builds, in the AWS emulator, the world a tugboat document expects, and writes a copy
of the document that names the emulator's resources.

    python demo_world.py MANIFEST DOCUMENT_BUCKET OUT_FILE

Creates: the document bucket; the status bucket (spec.status.uri); each model's bucket
with the repository's artifacts under <storeUri>/<version>/ (from
workloads/inference/models/<version>/), and for a model with `versionParameter` that SSM
parameter holding the newest version in the repository; the ECS cluster; a VPC, two
subnets, a security group, an ALB with an HTTP listener, and a blue and a green target
group per routed workload. moto runs no tasks and registers no targets, so each blue
target group gets `desiredCount` registered IPs standing for the tasks of the first
deployment (moto reports registered targets healthy); without them no workload would
ever become healthy and no listener rule would be created. The ARNs and IDs moto
generates differ from the manifest's, so OUT_FILE is the manifest with those fields
replaced. Used by .ci/demo (which also starts moto with MOTO_ECS_SERVICE_RUNNING, so
services report their tasks running); needs boto3 and PyYAML (both come with
moto[server]).
"""

import pathlib
import sys

import boto3
import yaml


def create_bucket(s3, name, region):
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
        )


def split_s3(uri):
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    return bucket, key


def main():
    manifest, document_bucket, out_file = sys.argv[1:4]
    root = pathlib.Path(__file__).resolve().parent.parent
    document = yaml.safe_load(pathlib.Path(manifest).read_text())
    spec = document["spec"]
    aws = spec["platform"].get("aws")
    if aws is None:
        sys.exit(f"{manifest} does not run on AWS (spec.platform.aws); nothing to emulate")
    region = aws["region"]

    create_bucket(boto3.client("s3"), document_bucket, "us-east-1")
    s3 = boto3.client("s3", region_name=region)
    status_uri = (spec.get("status") or {}).get("uri", "")
    if status_uri.startswith("s3://"):
        create_bucket(s3, split_s3(status_uri)[0], region)
    models = root / "workloads" / "inference" / "models"
    newest = sorted(p.name for p in models.iterdir() if p.is_dir())[-1]
    for model in spec.get("models", []):
        if not model["storeUri"].startswith("s3://"):
            continue
        version = model.get("version")
        if version is None:
            # The pointer the controller reads: the newest version the repository has.
            version = newest
            boto3.client("ssm", region_name=region).put_parameter(
                Name=model["versionParameter"], Value=version, Type="String", Overwrite=True
            )
        bucket, prefix = split_s3(model["storeUri"])
        create_bucket(s3, bucket, region)
        local = models / version
        for name in ("model.onnx", "metadata.json"):
            if (local / name).is_file():
                key = "/".join(p for p in (prefix.strip("/"), version, name) if p)
                s3.put_object(Bucket=bucket, Key=key, Body=(local / name).read_bytes())

    boto3.client("ecs", region_name=region).create_cluster(
        clusterName=aws["cluster"].rsplit("/", 1)[-1]
    )

    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{zone}"
        )["Subnet"]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    group = ec2.create_security_group(
        GroupName="tugboat-demo", Description="tugboat demo", VpcId=vpc
    )["GroupId"]
    aws["subnets"] = subnets
    aws["securityGroups"] = [group]

    elb = boto3.client("elbv2", region_name=region)
    name = f"{document['metadata']['name']}-{document['metadata']['environment']}"[:32]
    alb = elb.create_load_balancer(
        Name=name, Subnets=subnets, SecurityGroups=[group], Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    aws["listenerArn"] = elb.create_listener(
        LoadBalancerArn=alb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"},
            }
        ],
    )["Listeners"][0]["ListenerArn"]
    for index, workload in enumerate(spec["workloads"]):
        route = workload.get("route")
        if not route:
            continue
        for slot in ("blue", "green"):
            route["targetGroups"][slot] = elb.create_target_group(
                Name=f"{workload['name']}-{slot}"[:32],
                Protocol="HTTP",
                Port=workload["containerPort"],
                VpcId=vpc,
                TargetType="ip",
            )["TargetGroups"][0]["TargetGroupArn"]
        # Stand-ins for the first deployment's tasks, which moto does not run.
        elb.register_targets(
            TargetGroupArn=route["targetGroups"]["blue"],
            Targets=[
                {"Id": f"10.0.{index}.{10 + t}", "Port": workload["containerPort"]}
                for t in range(workload["desiredCount"])
            ],
        )

    pathlib.Path(out_file).write_text(
        "# Generated by .ci/demo from "
        + manifest
        + " with the emulator's ARNs and IDs.\n"
        + yaml.safe_dump(document, sort_keys=False)
    )
    print(f"emulated {aws['cluster']} in {region}: listener, "
          f"{2 * sum(1 for w in spec['workloads'] if w.get('route'))} target groups",
          file=sys.stderr)


if __name__ == "__main__":
    main()
