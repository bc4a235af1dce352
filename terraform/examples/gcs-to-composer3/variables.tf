variable "project" {
  type        = string
  description = "The project to deploy into: the landing bucket, the function and its service accounts are (must be) in it."
}

variable "region" {
  type        = string
  description = "The function's region, e.g. europe-west1: best the Composer environment's."
}

variable "name" {
  type        = string
  description = "The GCS-triggered function's name (unique in the project); the Pub/Sub one, if any, is this with -pubsub."
  default     = "dag-trigger-landing"
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

variable "composer_environment" {
  type        = string
  description = "The Cloud Composer 3 environment, projects/PROJECT/locations/REGION/environments/NAME: the code reads its Airflow URL through the Composer API, and the runtime service account gets roles/composer.user on PROJECT."

  validation {
    condition     = can(regex("^projects/[^/]+/locations/[^/]+/environments/[^/]+$", var.composer_environment))
    error_message = "composer_environment must be projects/PROJECT/locations/REGION/environments/NAME."
  }
}

variable "dag_id" {
  type        = string
  description = "The DAG each new object triggers (one run per object, with the object in its conf). Not needed with config_file."
  default     = null
}

variable "prefix" {
  type        = string
  description = "Only objects whose name starts with this trigger the DAG, e.g. incoming/ (without config_file). Default: every object."
  default     = null
}

variable "config_file" {
  type        = string
  description = "Instead of dag_id and prefix: a dag-trigger config file (TOML, several routes and DAGs), packaged with the function. Its [airflow] must use auth = \"composer\" (or composer_environment with auth = \"auto\")."
  default     = null
}

variable "vpc_connector" {
  type        = string
  description = "For a Private IP Composer environment: a Serverless VPC Access connector into its network, projects/PROJECT/locations/REGION/connectors/NAME."
  default     = null
}

variable "pubsub_topic" {
  type        = string
  description = "Optional: a topic, projects/PROJECT/topics/TOPIC in this project, whose messages trigger pubsub_dag_id through a second function (one function per trigger)."
  default     = null
}

variable "pubsub_dag_id" {
  type        = string
  description = "The DAG the topic's messages trigger (with the message in its conf). Default: dag_id."
  default     = null
}
