variable "project" {
  type        = string
  description = "The project to deploy into: the landing bucket, the function and its service accounts are (must be) in it."
}

variable "region" {
  type        = string
  description = "The function's region, e.g. europe-west1."
}

variable "name" {
  type        = string
  description = "The function's name (unique in the project)."
  default     = "dag-trigger-iap"
}

variable "bucket" {
  type        = string
  description = "The existing bucket whose new objects (google.cloud.storage.object.v1.finalized) trigger the DAG."
}

variable "bucket_location" {
  type        = string
  description = "The bucket's location, lowercase (europe-west1, or eu, us, eur4 ... for multi- and dual-region buckets): where the Eventarc trigger must be. Default: region."
  default     = null
}

variable "airflow_url" {
  type        = string
  description = "Airflow's web server as IAP serves it, e.g. https://airflow.example.com (without /api)."

  validation {
    condition     = can(regex("^https://[^/?#@]+(/[^?#]*)?$", var.airflow_url))
    error_message = "airflow_url must be an https URL without credentials or query, e.g. https://airflow.example.com."
  }
}

variable "dag_id" {
  type        = string
  description = "The DAG each new object triggers (one run per object, with the object in its conf)."
}

variable "prefix" {
  type        = string
  description = "Only objects whose name starts with this trigger the DAG, e.g. incoming/. Default: every object."
  default     = null
}

variable "auth_mode" {
  type        = string
  description = "iap_jwt (default): a JWT for the runtime service account, signed by IAM Credentials; works with Google-managed and custom OAuth clients. iap: an OIDC ID token whose audience is IAP's OAuth client ID (iap_client_id, or discovered from IAP's sign-in redirect); with a Google-managed client only if the caller is on IAP's programmatic_clients list."
  default     = "iap_jwt"

  validation {
    condition     = contains(["iap", "iap_jwt"], var.auth_mode)
    error_message = "auth_mode must be iap_jwt or iap."
  }
}

variable "iap_client_id" {
  type        = string
  description = "auth_mode iap: IAP's OAuth client ID (NUMBER-xxx.apps.googleusercontent.com), the ID token's audience. Default: discovered once from IAP's sign-in redirect."
  default     = null
}

variable "iap_backend_service" {
  type        = string
  description = "The name of the HTTPS load balancer's backend service that IAP protects in front of Airflow (a global google_compute_backend_service); the runtime service account gets roles/iap.httpsResourceAccessor on it only."
}

variable "iap_backend_service_project" {
  type        = string
  description = "The backend service's project. Default: project."
  default     = null
}
