//! The HCRM gRPC API: messages and service stubs generated from `proto/`, and the encoded
//! descriptor set that reflection serves (it includes `google.rpc` so clients can decode error
//! details).

#![allow(clippy::all, clippy::pedantic)]

/// Encoded `FileDescriptorSet` of every HCRM proto file and its imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hcrm_descriptor.bin"));

pub mod hcrm {
    pub mod r#type {
        pub mod v1 {
            tonic::include_proto!("hcrm.r#type.v1");
        }
    }
    pub mod patients {
        pub mod v1 {
            tonic::include_proto!("hcrm.patients.v1");
        }
    }
    pub mod followup {
        pub mod v1 {
            tonic::include_proto!("hcrm.followup.v1");
        }
    }
    pub mod feedback {
        pub mod v1 {
            tonic::include_proto!("hcrm.feedback.v1");
        }
    }
    pub mod opinion {
        pub mod v1 {
            tonic::include_proto!("hcrm.opinion.v1");
        }
    }
}

pub use hcrm::feedback::v1 as feedback;
pub use hcrm::followup::v1 as followup;
pub use hcrm::opinion::v1 as opinion;

pub use hcrm::patients::v1 as patients;
pub use hcrm::r#type::v1 as types;
