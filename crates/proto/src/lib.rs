//! The landsby contracts: Rust types and tonic clients and servers generated from `proto/`, and the
//! encoded file descriptor set that server reflection serves.

mod redact;

/// Generated code, nested as the proto packages are so cross-package references resolve.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod landsby {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("landsby.common.v1");
        }
    }
    pub mod audit {
        pub mod v1 {
            tonic::include_proto!("landsby.audit.v1");
        }
    }
    pub mod case {
        pub mod v1 {
            tonic::include_proto!("landsby.case.v1");
        }
    }
    pub mod visitation {
        pub mod v1 {
            tonic::include_proto!("landsby.visitation.v1");
        }
    }
    pub mod notification {
        pub mod v1 {
            tonic::include_proto!("landsby.notification.v1");
        }
    }
    pub mod worker {
        pub mod v1 {
            tonic::include_proto!("landsby.worker.v1");
        }
    }
}

#[doc(hidden)]
pub mod fuzz;

pub use landsby::audit::v1 as audit;
pub use landsby::case::v1 as case;
pub use landsby::common::v1 as common;
pub use landsby::notification::v1 as notification;
pub use landsby::visitation::v1 as visitation;
pub use landsby::worker::v1 as worker;

/// Every landsby contract (and the well-known types they import), encoded as a
/// `google.protobuf.FileDescriptorSet`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/landsby_descriptor.bin"));
