export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]

export type Database = {
  // Allows to automatically instantiate createClient with right options
  // instead of createClient<Database, { PostgrestVersion: 'XX' }>(URL, KEY)
  __InternalSupabase: {
    PostgrestVersion: "13"
  }
  public: {
    Tables: {
      base_models: {
        Row: {
          context_length: number
          created_at: string
          currency: string
          default_target_modules: string[]
          display_name: string
          enabled: boolean
          family: string
          gpu_count: number
          gpu_type: string
          hf_repo: string
          hyperparameters: NonNullable<Json>
          id: string
          lora_target_modules: string[]
          max_lora_rank: number
          parameter_count: number
          price_per_gpu_hour: number
          throughput_tokens_per_second: number
          tokenizer: string
          updated_at: string
        }
        Insert: {
          context_length: number
          created_at?: string
          currency?: string
          default_target_modules: string[]
          display_name: string
          enabled?: boolean
          family: string
          gpu_count?: number
          gpu_type: string
          hf_repo: string
          hyperparameters: NonNullable<Json>
          id: string
          lora_target_modules: string[]
          max_lora_rank: number
          parameter_count: number
          price_per_gpu_hour: number
          throughput_tokens_per_second: number
          tokenizer: string
          updated_at?: string
        }
        Update: {
          context_length?: number
          created_at?: string
          currency?: string
          default_target_modules?: string[]
          display_name?: string
          enabled?: boolean
          family?: string
          gpu_count?: number
          gpu_type?: string
          hf_repo?: string
          hyperparameters?: NonNullable<Json>
          id?: string
          lora_target_modules?: string[]
          max_lora_rank?: number
          parameter_count?: number
          price_per_gpu_hour?: number
          throughput_tokens_per_second?: number
          tokenizer?: string
          updated_at?: string
        }
        Relationships: []
      }
      checkpoints: {
        Row: {
          created_at: string
          epoch: number | null
          eval_loss: number | null
          external_job_id: string | null
          id: string
          is_best: boolean
          job_id: string
          metrics: NonNullable<Json>
          step: number
          storage_path: string | null
          superseded: boolean
          train_loss: number | null
          updated_at: string
          user_id: string
        }
        Insert: {
          created_at?: string
          epoch?: number | null
          eval_loss?: number | null
          external_job_id?: string | null
          id?: string
          is_best?: boolean
          job_id: string
          metrics?: NonNullable<Json>
          step: number
          storage_path?: string | null
          superseded?: boolean
          train_loss?: number | null
          updated_at?: string
          user_id: string
        }
        Update: {
          created_at?: string
          epoch?: number | null
          eval_loss?: number | null
          external_job_id?: string | null
          id?: string
          is_best?: boolean
          job_id?: string
          metrics?: NonNullable<Json>
          step?: number
          storage_path?: string | null
          superseded?: boolean
          train_loss?: number | null
          updated_at?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "checkpoints_job_fkey"
            columns: ["job_id", "user_id"]
            isOneToOne: false
            referencedRelation: "training_jobs"
            referencedColumns: ["id", "user_id"]
          },
        ]
      }
      cost_records: {
        Row: {
          amount: number
          created_at: string
          currency: string
          description: string | null
          gpu_seconds: number
          id: string
          idempotency_key: string | null
          job_id: string
          kind: Database["public"]["Enums"]["cost_record_kind"]
          user_id: string
        }
        Insert: {
          amount: number
          created_at?: string
          currency?: string
          description?: string | null
          gpu_seconds?: number
          id?: string
          idempotency_key?: string | null
          job_id: string
          kind: Database["public"]["Enums"]["cost_record_kind"]
          user_id: string
        }
        Update: {
          amount?: number
          created_at?: string
          currency?: string
          description?: string | null
          gpu_seconds?: number
          id?: string
          idempotency_key?: string | null
          job_id?: string
          kind?: Database["public"]["Enums"]["cost_record_kind"]
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "cost_records_job_fkey"
            columns: ["job_id", "user_id"]
            isOneToOne: false
            referencedRelation: "training_jobs"
            referencedColumns: ["id", "user_id"]
          },
        ]
      }
      datasets: {
        Row: {
          created_at: string
          deleted_at: string | null
          description: string | null
          error: Json | null
          file_name: string
          format: Database["public"]["Enums"]["dataset_format"] | null
          id: string
          max_invalid_fraction: number
          mime_type: string | null
          name: string
          progress_pct: number
          report: Json | null
          size_bytes: number | null
          stats: Json | null
          status: Database["public"]["Enums"]["dataset_status"]
          storage_path: string | null
          updated_at: string
          user_id: string
          validated_at: string | null
        }
        Insert: {
          created_at?: string
          deleted_at?: string | null
          description?: string | null
          error?: Json | null
          file_name: string
          format?: Database["public"]["Enums"]["dataset_format"] | null
          id?: string
          max_invalid_fraction?: number
          mime_type?: string | null
          name: string
          progress_pct?: number
          report?: Json | null
          size_bytes?: number | null
          stats?: Json | null
          status?: Database["public"]["Enums"]["dataset_status"]
          storage_path?: never
          updated_at?: string
          user_id?: string
          validated_at?: string | null
        }
        Update: {
          created_at?: string
          deleted_at?: string | null
          description?: string | null
          error?: Json | null
          file_name?: string
          format?: Database["public"]["Enums"]["dataset_format"] | null
          id?: string
          max_invalid_fraction?: number
          mime_type?: string | null
          name?: string
          progress_pct?: number
          report?: Json | null
          size_bytes?: number | null
          stats?: Json | null
          status?: Database["public"]["Enums"]["dataset_status"]
          storage_path?: never
          updated_at?: string
          user_id?: string
          validated_at?: string | null
        }
        Relationships: []
      }
      job_events: {
        Row: {
          created_at: string
          data: NonNullable<Json>
          id: number
          job_id: string
          level: Database["public"]["Enums"]["job_event_level"]
          message: string
          type: string
          user_id: string
        }
        Insert: {
          created_at?: string
          data?: NonNullable<Json>
          id?: never
          job_id: string
          level?: Database["public"]["Enums"]["job_event_level"]
          message: string
          type: string
          user_id: string
        }
        Update: {
          created_at?: string
          data?: NonNullable<Json>
          id?: never
          job_id?: string
          level?: Database["public"]["Enums"]["job_event_level"]
          message?: string
          type?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "job_events_job_fkey"
            columns: ["job_id", "user_id"]
            isOneToOne: false
            referencedRelation: "training_jobs"
            referencedColumns: ["id", "user_id"]
          },
        ]
      }
      metrics_points: {
        Row: {
          created_at: string
          epoch: number | null
          eval_loss: number | null
          grad_norm: number | null
          id: number
          job_id: string
          learning_rate: number | null
          recorded_at: string
          step: number
          tokens_per_second: number | null
          train_loss: number | null
          user_id: string
        }
        Insert: {
          created_at?: string
          epoch?: number | null
          eval_loss?: number | null
          grad_norm?: number | null
          id?: never
          job_id: string
          learning_rate?: number | null
          recorded_at?: string
          step: number
          tokens_per_second?: number | null
          train_loss?: number | null
          user_id: string
        }
        Update: {
          created_at?: string
          epoch?: number | null
          eval_loss?: number | null
          grad_norm?: number | null
          id?: never
          job_id?: string
          learning_rate?: number | null
          recorded_at?: string
          step?: number
          tokens_per_second?: number | null
          train_loss?: number | null
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "metrics_points_job_fkey"
            columns: ["job_id", "user_id"]
            isOneToOne: false
            referencedRelation: "training_jobs"
            referencedColumns: ["id", "user_id"]
          },
        ]
      }
      model_artifacts: {
        Row: {
          created_at: string
          id: string
          job_id: string
          kind: Database["public"]["Enums"]["artifact_kind"]
          sha256: string | null
          size_bytes: number | null
          storage_path: string
          updated_at: string
          user_id: string
          verification: string
          verified_at: string | null
        }
        Insert: {
          created_at?: string
          id?: string
          job_id: string
          kind: Database["public"]["Enums"]["artifact_kind"]
          sha256?: string | null
          size_bytes?: number | null
          storage_path: string
          updated_at?: string
          user_id: string
          verification?: string
          verified_at?: string | null
        }
        Update: {
          created_at?: string
          id?: string
          job_id?: string
          kind?: Database["public"]["Enums"]["artifact_kind"]
          sha256?: string | null
          size_bytes?: number | null
          storage_path?: string
          updated_at?: string
          user_id?: string
          verification?: string
          verified_at?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "model_artifacts_job_fkey"
            columns: ["job_id", "user_id"]
            isOneToOne: false
            referencedRelation: "training_jobs"
            referencedColumns: ["id", "user_id"]
          },
        ]
      }
      notifications: {
        Row: {
          created_at: string
          dataset_id: string | null
          id: string
          is_read: boolean
          job_id: string | null
          kind: string
          payload: NonNullable<Json>
          read_at: string | null
          user_id: string
        }
        Insert: {
          created_at?: string
          dataset_id?: string | null
          id?: string
          is_read?: boolean
          job_id?: string | null
          kind: string
          payload?: NonNullable<Json>
          read_at?: string | null
          user_id: string
        }
        Update: {
          created_at?: string
          dataset_id?: string | null
          id?: string
          is_read?: boolean
          job_id?: string | null
          kind?: string
          payload?: NonNullable<Json>
          read_at?: string | null
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "notifications_dataset_fkey"
            columns: ["dataset_id", "user_id"]
            isOneToOne: false
            referencedRelation: "datasets"
            referencedColumns: ["id", "user_id"]
          },
          {
            foreignKeyName: "notifications_job_fkey"
            columns: ["job_id", "user_id"]
            isOneToOne: false
            referencedRelation: "training_jobs"
            referencedColumns: ["id", "user_id"]
          },
        ]
      }
      training_jobs: {
        Row: {
          actual_cost: number | null
          actual_gpu_seconds: number | null
          attempt_count: number
          base_model_id: string
          billed_gpu_count: number | null
          config: Json | null
          created_at: string
          currency: string
          current_epoch: number | null
          current_step: number | null
          dataset_id: string
          deleted_at: string | null
          dispatch_attempts: number
          early_stopping: Json | null
          error: Json | null
          estimated_cost: number | null
          estimated_finish_at: string | null
          estimated_gpu_seconds: number | null
          external_job_id: string | null
          finished_at: string | null
          id: string
          idempotency_key: string | null
          last_polled_at: string | null
          name: string | null
          parent_job_id: string | null
          price_per_gpu_hour: number | null
          progress_pct: number
          requested_config: NonNullable<Json>
          resume_from_checkpoint_id: string | null
          started_at: string | null
          status: Database["public"]["Enums"]["training_job_status"]
          status_changed_at: string
          suffix: string | null
          total_steps: number | null
          updated_at: string
          user_id: string
          validation_dataset_id: string | null
        }
        Insert: {
          actual_cost?: number | null
          actual_gpu_seconds?: number | null
          attempt_count?: number
          base_model_id: string
          billed_gpu_count?: number | null
          config?: Json | null
          created_at?: string
          currency?: string
          current_epoch?: number | null
          current_step?: number | null
          dataset_id: string
          deleted_at?: string | null
          dispatch_attempts?: number
          early_stopping?: Json | null
          error?: Json | null
          estimated_cost?: number | null
          estimated_finish_at?: string | null
          estimated_gpu_seconds?: number | null
          external_job_id?: string | null
          finished_at?: string | null
          id?: string
          idempotency_key?: string | null
          last_polled_at?: string | null
          name?: string | null
          parent_job_id?: string | null
          price_per_gpu_hour?: number | null
          progress_pct?: number
          requested_config?: NonNullable<Json>
          resume_from_checkpoint_id?: string | null
          started_at?: string | null
          status?: Database["public"]["Enums"]["training_job_status"]
          status_changed_at?: string
          suffix?: string | null
          total_steps?: number | null
          updated_at?: string
          user_id?: string
          validation_dataset_id?: string | null
        }
        Update: {
          actual_cost?: number | null
          actual_gpu_seconds?: number | null
          attempt_count?: number
          base_model_id?: string
          billed_gpu_count?: number | null
          config?: Json | null
          created_at?: string
          currency?: string
          current_epoch?: number | null
          current_step?: number | null
          dataset_id?: string
          deleted_at?: string | null
          dispatch_attempts?: number
          early_stopping?: Json | null
          error?: Json | null
          estimated_cost?: number | null
          estimated_finish_at?: string | null
          estimated_gpu_seconds?: number | null
          external_job_id?: string | null
          finished_at?: string | null
          id?: string
          idempotency_key?: string | null
          last_polled_at?: string | null
          name?: string | null
          parent_job_id?: string | null
          price_per_gpu_hour?: number | null
          progress_pct?: number
          requested_config?: NonNullable<Json>
          resume_from_checkpoint_id?: string | null
          started_at?: string | null
          status?: Database["public"]["Enums"]["training_job_status"]
          status_changed_at?: string
          suffix?: string | null
          total_steps?: number | null
          updated_at?: string
          user_id?: string
          validation_dataset_id?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "training_jobs_base_model_id_fkey"
            columns: ["base_model_id"]
            isOneToOne: false
            referencedRelation: "base_models"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "training_jobs_dataset_fkey"
            columns: ["dataset_id", "user_id"]
            isOneToOne: false
            referencedRelation: "datasets"
            referencedColumns: ["id", "user_id"]
          },
          {
            foreignKeyName: "training_jobs_parent_job_fkey"
            columns: ["parent_job_id", "user_id"]
            isOneToOne: false
            referencedRelation: "training_jobs"
            referencedColumns: ["id", "user_id"]
          },
          {
            foreignKeyName: "training_jobs_resume_checkpoint_fkey"
            columns: ["resume_from_checkpoint_id", "parent_job_id"]
            isOneToOne: false
            referencedRelation: "checkpoints"
            referencedColumns: ["id", "job_id"]
          },
          {
            foreignKeyName: "training_jobs_validation_dataset_fkey"
            columns: ["validation_dataset_id", "user_id"]
            isOneToOne: false
            referencedRelation: "datasets"
            referencedColumns: ["id", "user_id"]
          },
        ]
      }
    }
    Views: {
      [_ in never]: never
    }
    Functions: {
      cancel_training_job: {
        Args: { job_id: string }
        Returns: {
          actual_cost: number | null
          actual_gpu_seconds: number | null
          attempt_count: number
          base_model_id: string
          billed_gpu_count: number | null
          config: Json | null
          created_at: string
          currency: string
          current_epoch: number | null
          current_step: number | null
          dataset_id: string
          deleted_at: string | null
          dispatch_attempts: number
          early_stopping: Json | null
          error: Json | null
          estimated_cost: number | null
          estimated_finish_at: string | null
          estimated_gpu_seconds: number | null
          external_job_id: string | null
          finished_at: string | null
          id: string
          idempotency_key: string | null
          last_polled_at: string | null
          name: string | null
          parent_job_id: string | null
          price_per_gpu_hour: number | null
          progress_pct: number
          requested_config: NonNullable<Json>
          resume_from_checkpoint_id: string | null
          started_at: string | null
          status: Database["public"]["Enums"]["training_job_status"]
          status_changed_at: string
          suffix: string | null
          total_steps: number | null
          updated_at: string
          user_id: string
          validation_dataset_id: string | null
        }
        SetofOptions: {
          from: "*"
          to: "training_jobs"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      create_training_job: {
        Args: {
          base_model_id: string
          config?: Json
          dataset_id: string
          idempotency_key?: string
          name?: string
          parent_job_id?: string
          resume_from_checkpoint_id?: string
          start?: boolean
          suffix?: string
          validation_dataset_id?: string
        }
        Returns: {
          actual_cost: number | null
          actual_gpu_seconds: number | null
          attempt_count: number
          base_model_id: string
          billed_gpu_count: number | null
          config: Json | null
          created_at: string
          currency: string
          current_epoch: number | null
          current_step: number | null
          dataset_id: string
          deleted_at: string | null
          dispatch_attempts: number
          early_stopping: Json | null
          error: Json | null
          estimated_cost: number | null
          estimated_finish_at: string | null
          estimated_gpu_seconds: number | null
          external_job_id: string | null
          finished_at: string | null
          id: string
          idempotency_key: string | null
          last_polled_at: string | null
          name: string | null
          parent_job_id: string | null
          price_per_gpu_hour: number | null
          progress_pct: number
          requested_config: NonNullable<Json>
          resume_from_checkpoint_id: string | null
          started_at: string | null
          status: Database["public"]["Enums"]["training_job_status"]
          status_changed_at: string
          suffix: string | null
          total_steps: number | null
          updated_at: string
          user_id: string
          validation_dataset_id: string | null
        }
        SetofOptions: {
          from: "*"
          to: "training_jobs"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      job_loss_curve: {
        Args: { job_id: string; max_points?: number }
        Returns: {
          epoch: number
          eval_loss: number
          learning_rate: number
          step: number
          tokens_per_second: number
          train_loss: number
        }[]
      }
      quote_training_job: {
        Args: {
          base_model_id: string
          config?: Json
          dataset_id: string
          suffix?: string
          validation_dataset_id?: string
        }
        Returns: Json
      }
      retry_training_job: {
        Args: {
          checkpoint_id?: string
          config?: Json
          idempotency_key?: string
          job_id: string
          name?: string
        }
        Returns: {
          actual_cost: number | null
          actual_gpu_seconds: number | null
          attempt_count: number
          base_model_id: string
          billed_gpu_count: number | null
          config: Json | null
          created_at: string
          currency: string
          current_epoch: number | null
          current_step: number | null
          dataset_id: string
          deleted_at: string | null
          dispatch_attempts: number
          early_stopping: Json | null
          error: Json | null
          estimated_cost: number | null
          estimated_finish_at: string | null
          estimated_gpu_seconds: number | null
          external_job_id: string | null
          finished_at: string | null
          id: string
          idempotency_key: string | null
          last_polled_at: string | null
          name: string | null
          parent_job_id: string | null
          price_per_gpu_hour: number | null
          progress_pct: number
          requested_config: NonNullable<Json>
          resume_from_checkpoint_id: string | null
          started_at: string | null
          status: Database["public"]["Enums"]["training_job_status"]
          status_changed_at: string
          suffix: string | null
          total_steps: number | null
          updated_at: string
          user_id: string
          validation_dataset_id: string | null
        }
        SetofOptions: {
          from: "*"
          to: "training_jobs"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      start_training_job: {
        Args: { job_id: string }
        Returns: {
          actual_cost: number | null
          actual_gpu_seconds: number | null
          attempt_count: number
          base_model_id: string
          billed_gpu_count: number | null
          config: Json | null
          created_at: string
          currency: string
          current_epoch: number | null
          current_step: number | null
          dataset_id: string
          deleted_at: string | null
          dispatch_attempts: number
          early_stopping: Json | null
          error: Json | null
          estimated_cost: number | null
          estimated_finish_at: string | null
          estimated_gpu_seconds: number | null
          external_job_id: string | null
          finished_at: string | null
          id: string
          idempotency_key: string | null
          last_polled_at: string | null
          name: string | null
          parent_job_id: string | null
          price_per_gpu_hour: number | null
          progress_pct: number
          requested_config: NonNullable<Json>
          resume_from_checkpoint_id: string | null
          started_at: string | null
          status: Database["public"]["Enums"]["training_job_status"]
          status_changed_at: string
          suffix: string | null
          total_steps: number | null
          updated_at: string
          user_id: string
          validation_dataset_id: string | null
        }
        SetofOptions: {
          from: "*"
          to: "training_jobs"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      validate_training_config: {
        Args: { base_model_id: string; config: Json }
        Returns: Json
      }
    }
    Enums: {
      artifact_kind:
        | "adapter_weights"
        | "adapter_config"
        | "checkpoint"
        | "metrics"
        | "model_card"
      cost_record_kind: "estimate" | "usage" | "refund"
      dataset_format:
        | "chat"
        | "conversation"
        | "sharegpt"
        | "instruction"
        | "prompt_completion"
      dataset_status: "uploading" | "validating" | "ready" | "error"
      job_event_level: "debug" | "info" | "warning" | "error"
      training_job_status:
        | "pending"
        | "queued"
        | "dispatching"
        | "running"
        | "succeeded"
        | "failed"
        | "cancelling"
        | "cancelled"
        | "timed_out"
    }
    CompositeTypes: {
      [_ in never]: never
    }
  }
}

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] &
        DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] &
        DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
        Row: infer R
      }
      ? R
      : never
    : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Insert: infer I
      }
      ? I
      : never
    : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Update: infer U
      }
      ? U
      : never
    : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends (DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never) = never,
> = DefaultSchemaEnumNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
    : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends (PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never) = never,
> = PublicCompositeTypeNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
    : never

export const Constants = {
  public: {
    Enums: {
      artifact_kind: [
        "adapter_weights",
        "adapter_config",
        "checkpoint",
        "metrics",
        "model_card",
      ],
      cost_record_kind: ["estimate", "usage", "refund"],
      dataset_format: [
        "chat",
        "conversation",
        "sharegpt",
        "instruction",
        "prompt_completion",
      ],
      dataset_status: ["uploading", "validating", "ready", "error"],
      job_event_level: ["debug", "info", "warning", "error"],
      training_job_status: [
        "pending",
        "queued",
        "dispatching",
        "running",
        "succeeded",
        "failed",
        "cancelling",
        "cancelled",
        "timed_out",
      ],
    },
  },
} as const

