//! What a store URL names: one Redis server, or a Redis Cluster by some of
//! its nodes (see [`crate::RedisConfig::url`]).

use crate::RedisStoreError;

/// The server or Cluster a URL names.
pub(crate) enum Target {
    /// `redis://…` or `rediss://…`.
    Single(redis::Client),
    /// `redis+cluster://…` or `rediss+cluster://…`: one `redis://` (or
    /// `rediss://`) URL per seed node, each with the URL's credentials, and
    /// how to write the URL of any other node.
    Cluster(Vec<String>, NodeUrl),
}

/// How the URL of one node of a Cluster is written: the Cluster URL's
/// scheme, credentials and options around the node's address.
#[derive(Clone)]
pub(crate) struct NodeUrl {
    scheme: &'static str,
    userinfo: Option<String>,
    query: Option<String>,
}

impl NodeUrl {
    /// The URL of the node at `host:port` (an IPv6 address is bracketed).
    pub(crate) fn at(&self, host: &str, port: u16) -> String {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        self.url(&format!("{host}:{port}"))
    }

    /// The URL of the node at `address` (`host:port` as written).
    fn url(&self, address: &str) -> String {
        let mut url = format!("{}://", self.scheme);
        if let Some(u) = &self.userinfo {
            url.push_str(u);
            url.push('@');
        }
        url.push_str(address);
        if let Some(q) = &self.query {
            url.push_str("/?");
            url.push_str(q);
        }
        url
    }
}

impl Target {
    /// Reads a store URL. Errors never repeat the URL (it may hold a password).
    pub(crate) fn parse(url: &str) -> Result<Target, RedisStoreError> {
        let bad = |why: &str| RedisStoreError::Url(why.to_string());
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("it has no scheme (redis://, redis+cluster://, …)"));
        };
        let node_scheme = match scheme.to_ascii_lowercase().as_str() {
            "redis" | "rediss" => {
                return redis::Client::open(url)
                    .map(Target::Single)
                    .map_err(|e| RedisStoreError::Url(format!("{:?}", e.kind())));
            }
            "redis+cluster" => "redis",
            "rediss+cluster" => "rediss",
            _ => {
                return Err(bad(
                    "the scheme is not redis, rediss, redis+cluster or rediss+cluster",
                ))
            }
        };
        // [userinfo@]host:port,host:port[/][?query]
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        if !matches!(path, "" | "/" | "/0") {
            return Err(bad(
                "a Redis Cluster URL names no database (a Cluster has only database 0)",
            ));
        }
        let template = NodeUrl {
            scheme: node_scheme,
            userinfo: userinfo.map(str::to_string),
            query: query.map(str::to_string),
        };
        let mut seeds = Vec::new();
        for host in hosts.split(',') {
            if host.is_empty() {
                return Err(bad("a Redis Cluster URL lists an empty node address"));
            }
            let seed = template.url(host);
            // Each seed must be a URL the client reads.
            redis::Client::open(seed.as_str()).map_err(|e| {
                RedisStoreError::Url(format!("a Cluster node address: {:?}", e.kind()))
            })?;
            seeds.push(seed);
        }
        Ok(Target::Cluster(seeds, template))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds(url: &str) -> Vec<String> {
        match Target::parse(url) {
            Ok(Target::Cluster(s, _)) => s,
            Ok(Target::Single(_)) => panic!("{url}: read as one server"),
            Err(e) => panic!("{url}: {e}"),
        }
    }

    #[test]
    fn cluster_urls_name_their_seed_nodes() {
        assert_eq!(
            seeds("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]
        );
        assert_eq!(
            seeds("redis+cluster://u:pw@h1:7000,h2:7001/"),
            ["redis://u:pw@h1:7000", "redis://u:pw@h2:7001"]
        );
        assert_eq!(seeds("REDIS+CLUSTER://h:1"), ["redis://h:1"]);
        let Ok(Target::Cluster(_, node)) = Target::parse("redis+cluster://:pw@h:1") else {
            panic!("not a Cluster URL");
        };
        assert_eq!(node.at("::1", 7000), "redis://:pw@[::1]:7000");
        assert_eq!(node.at("10.0.0.2", 7001), "redis://:pw@10.0.0.2:7001");
        assert!(matches!(
            Target::parse("redis://127.0.0.1:6379/2"),
            Ok(Target::Single(_))
        ));
    }

    #[test]
    fn bad_cluster_urls_are_refused_without_repeating_them() {
        for url in [
            "redis+cluster://h:1/3",
            "redis+cluster://h:1,,h:2",
            "redis+cluster://",
            "memcached://h:1",
            "no-scheme",
            "redis+cluster://:hunter2@h:notaport",
        ] {
            match Target::parse(url) {
                Err(e) => assert!(!e.to_string().contains("hunter2"), "{url}: {e}"),
                Ok(_) => panic!("{url}: accepted"),
            }
        }
    }
}
