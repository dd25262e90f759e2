"""Talks to a running landsby the way a caseworker platform built on grpcio would: it learns the
contract through server reflection (grpcio's own reflection client), then creates a case and reads it
back with a bearer token, and checks that a call without a token is refused. With a second address, it
lists the case's visitation plans at the visitation service the same way.

Usage: reflection_client.py CASE_HOST:PORT TOKEN [VISITATION_HOST:PORT]
"""

import sys
import time

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "landsby.case.v1.CaseService"
VISITATION = "landsby.visitation.v1.VisitationService"

# The case from the README's grpcurl example.
CASE = {
    "request_id": "0190a8f0-58c3-7cc2-9f3e-2b0f1c5d7a10",
    "case": {
        "child": {
            "given_name": "Emma",
            "family_name": "Nordmann",
            "birth_date": {"year": 2018, "month": 5, "day": 14},
        },
        "placement": {
            "kind": "PLACEMENT_KIND_CARE_ORDER",
            "start_date": {"year": 2025, "month": 9, "day": 1},
            "foster_home": {
                "address": {"street": "Bakkeveien 7", "postal_code": "0150", "city": "Oslo"}
            },
        },
        "goal": "GOAL_REUNIFICATION",
        "assigned_caseworker": "dev-caseworker",
        "team": "dev-team",
    },
}


def connect(addr: str, name: str):
    """A channel to a SERVING service, and a function giving (request class, call) of its methods,
    learnt through reflection."""
    channel = grpc.insecure_channel(addr)
    grpc.channel_ready_future(channel).result(timeout=60)

    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(300):
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        if status == health_pb2.HealthCheckResponse.SERVING:
            break
        time.sleep(0.1)
    else:
        sys.exit(f"{addr} never became SERVING")

    database = ProtoReflectionDescriptorDatabase(channel)
    services = database.get_services()
    assert name in services, services
    service = DescriptorPool(database).FindServiceByName(name)

    def method(method_name: str):
        descriptor = service.methods_by_name[method_name]
        request = message_factory.GetMessageClass(descriptor.input_type)
        response = message_factory.GetMessageClass(descriptor.output_type)
        call = channel.unary_unary(
            f"/{name}/{method_name}",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        return request, call

    return services, method


def main(addr: str, token: str, visitation_addr: str | None) -> None:
    services, method = connect(addr, SERVICE)
    auth = [("authorization", f"Bearer {token}")]
    create_request, create = method("CreateCase")
    created = create(json_format.ParseDict(CASE, create_request()), metadata=auth, timeout=10).case
    assert created.id and created.version >= 1, created

    get_request, get = method("GetCase")
    read = get(get_request(case_id=created.id), metadata=auth, timeout=10).case
    assert read.id == created.id and read.child.given_name == "Emma", read

    try:
        get(get_request(case_id=created.id), timeout=10)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err
    else:
        sys.exit("a call without a token was answered")
    print(f"grpcio reflection client: {len(services)} services; created and read case {created.id}")

    if visitation_addr:
        _, visit_method = connect(visitation_addr, VISITATION)
        list_request, list_plans = visit_method("ListVisitationPlans")
        plans = list_plans(list_request(case_id=created.id), metadata=auth, timeout=10).plans
        assert len(plans) == 0, plans
        print(f"grpcio reflection client: the case has {len(plans)} visitation plans yet")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
