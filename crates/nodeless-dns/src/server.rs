//! The DNS request handler: cluster names from the in-memory [`Records`], everything else to
//! hickory's forwarder (a [`Catalog`] holding one root-zone [`ForwardZoneHandler`]).

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{LowerName, Name, Record};
use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::forwarder::{ForwardConfig, ForwardZoneHandler};
use hickory_server::zone_handler::{Catalog, MessageResponseBuilder};
use tokio::sync::watch;

use crate::records::{Answer, Records};

/// Answers queries; cheap to share between the UDP and TCP listeners.
pub(crate) struct Handler {
    origin: LowerName,
    /// `None` until the watches have listed everything once: answering from a partial view
    /// would hand out false NXDOMAINs.
    records: watch::Receiver<Option<Arc<Records>>>,
    forward: Catalog,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("cannot configure the forwarder to the upstream resolvers: {0}")]
    Configure(String),
}

impl Handler {
    pub(crate) fn new(
        origin: LowerName,
        records: watch::Receiver<Option<Arc<Records>>>,
        upstreams: &[SocketAddr],
    ) -> Result<Self, ForwardError> {
        Ok(Self {
            origin,
            records,
            forward: forwarder(upstreams)?,
        })
    }

    /// Answers from the cluster view; `None` (not synced yet) is SERVFAIL, so resolvers try
    /// again instead of caching a false NXDOMAIN.
    async fn answer<R: ResponseHandler>(
        &self,
        request: &Request,
        found: Option<(Answer, &Record)>,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = true;
        let edns = response_edns(request);
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let Some((answer, soa)) = found else {
            metadata.response_code = ResponseCode::ServFail;
            metadata.authoritative = false;
            let response = builder.build_no_records(metadata);
            return send(request, &mut response_handle, response).await;
        };
        let (answers, additionals, negative) = match answer {
            Answer::Found {
                answers,
                additionals,
            } => (answers, additionals, None),
            Answer::NoData | Answer::NotOurs => (vec![], vec![], Some(ResponseCode::NoError)),
            Answer::NxDomain => (vec![], vec![], Some(ResponseCode::NXDomain)),
        };
        // Negative answers carry the zone's SOA so resolvers cache them for its minimum TTL.
        let authority: Vec<&Record> = match negative {
            Some(code) => {
                metadata.response_code = code;
                vec![soa]
            }
            None => vec![],
        };
        let response = builder.build(metadata, answers.iter(), [], authority, additionals.iter());
        send(request, &mut response_handle, response).await
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let is_query = request.metadata.message_type == MessageType::Query
            && request.metadata.op_code == OpCode::Query
            && request.queries.len() == 1;
        if !is_query {
            // The catalog answers malformed and unsupported requests with the right errors.
            return self.forward::<R, T>(request, response_handle).await;
        }
        let query = request.queries.queries()[0].original();
        // Cloned out so no borrow of the channel is held across an await.
        let records = self.records.borrow().clone();
        match &records {
            Some(records) => match records.lookup(query.name(), query.query_type()) {
                Answer::NotOurs => self.forward::<R, T>(request, response_handle).await,
                answer => {
                    let found = Some((answer, records.soa()));
                    self.answer(request, found, response_handle).await
                }
            },
            None if self.origin.zone_of(&LowerName::new(query.name())) => {
                self.answer(request, None, response_handle).await
            }
            None => self.forward::<R, T>(request, response_handle).await,
        }
    }
}

impl Handler {
    async fn forward<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        handle: R,
    ) -> ResponseInfo {
        self.forward.handle_request::<R, T>(request, handle).await
    }
}

/// The EDNS section of the answer when the query had one, as hickory's catalog builds it.
fn response_edns(request: &Request) -> Option<Edns> {
    let asked = request.edns.as_ref()?;
    let mut edns = Edns::new();
    edns.set_max_payload(asked.max_payload().max(512));
    edns.set_version(0);
    Some(edns)
}

async fn send<'a, R: ResponseHandler>(
    request: &Request,
    response_handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> ResponseInfo {
    match response_handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            tracing::debug!(%error, src = %request.src(), "failed to send a dns response");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}

/// A catalog forwarding every name to `upstreams`; with none, it refuses them.
fn forwarder(upstreams: &[SocketAddr]) -> Result<Catalog, ForwardError> {
    let mut catalog = Catalog::new();
    if upstreams.is_empty() {
        return Ok(catalog);
    }
    let name_servers = upstreams
        .iter()
        .map(|addr| {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for connection in &mut server.connections {
                connection.port = addr.port();
            }
            server
        })
        .collect();
    let config = ForwardConfig {
        name_servers,
        options: Some(ResolverOpts::default()),
    };
    let handler = ForwardZoneHandler::builder_tokio(config)
        .build()
        .map_err(ForwardError::Configure)?;
    catalog.upsert(LowerName::from(Name::root()), vec![Arc::new(handler)]);
    Ok(catalog)
}
