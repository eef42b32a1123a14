//! atlasgate — a self-hosted broker between your applications and Atlassian Cloud.
