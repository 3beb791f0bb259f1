//! The methods the REST API serves, read from the services' descriptor set, and the raw gRPC
//! calls behind them: the gateway encodes JSON into protobuf with the method's descriptor and
//! forwards bytes, so a new method or field needs no gateway change.

use crate::upstream::{Upstream, Upstreams};
use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
    ServiceDescriptor,
};
use std::collections::BTreeMap;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// One gRPC method behind `POST /api/v1/{service}/{method}`.
#[derive(Clone)]
pub struct Route {
    pub method: MethodDescriptor,
    /// `/hcrm.patients.v1.PatientService/GetPatient`.
    pub grpc_path: http::uri::PathAndQuery,
    pub upstream: Upstream,
}

impl Route {
    pub fn client_streaming(&self) -> bool {
        self.method.is_client_streaming()
    }

    pub fn server_streaming(&self) -> bool {
        self.method.is_server_streaming()
    }

    pub fn input(&self) -> MessageDescriptor {
        self.method.input()
    }

    pub fn output(&self) -> MessageDescriptor {
        self.method.output()
    }
}

pub struct Catalog {
    /// Keyed by `{service}/{method}`.
    routes: BTreeMap<String, Route>,
    services: Vec<ServiceDescriptor>,
}

impl Catalog {
    /// Every method of every HCRM service in the descriptor set.
    pub fn new(upstreams: &Upstreams) -> anyhow::Result<Self> {
        let pool = DescriptorPool::decode(hcrm_proto::FILE_DESCRIPTOR_SET)?;
        let mut routes = BTreeMap::new();
        let mut services = Vec::new();
        for service in pool.services() {
            let Some(upstream) = upstreams.for_service(service.full_name()) else {
                continue;
            };
            for method in service.methods() {
                let key = format!("{}/{}", service.full_name(), method.name());
                let grpc_path = format!("/{key}").parse()?;
                routes.insert(
                    key,
                    Route {
                        method,
                        grpc_path,
                        upstream: upstream.clone(),
                    },
                );
            }
            services.push(service);
        }
        anyhow::ensure!(!routes.is_empty(), "the descriptor set has no HCRM service");
        Ok(Self { routes, services })
    }

    pub fn get(&self, service: &str, method: &str) -> Option<&Route> {
        self.routes.get(&format!("{service}/{method}"))
    }

    /// Whether `service` is one the gateway forwards (for grpc-web).
    pub fn has_service(&self, service: &str) -> bool {
        self.services.iter().any(|s| s.full_name() == service)
    }

    pub fn services(&self) -> Vec<ServiceDescriptor> {
        self.services.clone()
    }

    pub fn routes(&self) -> impl Iterator<Item = (&String, &Route)> {
        self.routes.iter()
    }
}

/// Reads one request message from JSON (proto3 JSON mapping; unknown fields refused).
pub fn from_json(desc: MessageDescriptor, value: &serde_json::Value) -> Result<Bytes, String> {
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let message = DynamicMessage::deserialize_with_options(desc, value, &options).map_err(|e| e.to_string())?;
    Ok(message.encode_to_vec().into())
}

/// Writes one response message as JSON (proto3 JSON mapping: lowerCamelCase names, 64-bit
/// integers as strings, enums by name, fields at their default left out).
pub fn to_json(desc: MessageDescriptor, bytes: Bytes) -> Result<serde_json::Value, String> {
    let message = DynamicMessage::decode(desc, bytes).map_err(|e| format!("undecodable response: {e}"))?;
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map_err(|e| format!("unserialisable response: {e}"))
}

/// A codec that passes encoded messages through untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(hcrm_proto::FILE_DESCRIPTOR_SET).unwrap()
    }

    #[test]
    fn json_goes_to_protobuf_and_back_in_the_proto3_mapping() {
        let desc = pool()
            .get_message_by_name("hcrm.patients.v1.CreatePatientRequest")
            .unwrap();
        let input = serde_json::json!({
            "patient": { "displayName": "张三", "phones": ["13800000001"] },
            "requestId": "r-1"
        });
        let bytes = from_json(desc.clone(), &input).unwrap();
        let typed = hcrm_proto::patients::CreatePatientRequest::decode(bytes.clone()).unwrap();
        assert_eq!(typed.request_id, "r-1");
        assert_eq!(typed.patient.unwrap().display_name, "张三");
        assert_eq!(to_json(desc, bytes).unwrap(), input);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused_with_the_field_named() {
        let desc = pool()
            .get_message_by_name("hcrm.patients.v1.CreatePatientRequest")
            .unwrap();
        let err = from_json(desc.clone(), &serde_json::json!({ "patien": {} })).unwrap_err();
        assert!(err.contains("patien"), "{err}");
        let err = from_json(desc, &serde_json::json!({ "requestId": 5 })).unwrap_err();
        assert!(!err.is_empty());
    }
}
